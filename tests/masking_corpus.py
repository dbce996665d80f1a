"""A generated corpus of personal numbers in the forms people write them, and of ordinary numbers.

Used by the property tests (tests/test_masking_recall.py, through hypothesis) and by the benchmark
(benchmarks/masking.py, through random.Random): every generator takes a ``Draw`` so both drive the
same code. A sample is the text around the number, the number's span in it, and how many of its
characters the masked form must hide at least.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


class Draw(Protocol):
    """What a generator needs: pick one of a sequence, pick an integer in ``[lo, hi]``."""

    def choice(self, options: Sequence[T]) -> T: ...

    def randint(self, lo: int, hi: int) -> int: ...


@dataclass(frozen=True)
class Sample:
    kind: str
    text: str
    start: int  # the number's span in text
    end: int
    hidden: int  # characters of the span the masked form must replace at least


FULL_WIDTH = str.maketrans("0123456789-.Xx ", "０１２３４５６７８９－．Ｘｘ　")
MOBILE_HEADS = ("13", "14", "15", "16", "17", "18", "19")
AREA_CODES = (
    "010",
    "020",
    "021",
    "022",
    "023",
    "024",
    "025",
    "027",
    "028",
    "029",
    "0311",
    "0351",
    "0371",
    "0431",
    "0451",
    "0471",
    "0531",
    "0551",
    "0571",
    "0591",
    "0731",
    "0755",
    "0769",
    "0851",
    "0871",
    "0898",
    "0931",
)
FILLER = (
    "市民",
    "来电",
    "反映",
    "本人",
    "小区",
    "物业",
    "拖欠",
    "工资",
    "三个月",
    "至今",
    "没有",
    "解决",
    "希望",
    "尽快",
    "处理",
    "联系",
    "方式",
    "回电",
    "请",
    "，",
    "。",
    "：",
    "（",
    "）",
    "、",
    " ",
    "\n",
    "；",
    "“",
    "”",
)
LABELS = (
    "",
    "",
    "",
    "电话",
    "手机",
    "手机号：",
    "联系电话：",
    "微信",
    "微信号",
    "qq",
    "QQ",
    "wx",
    "vx",
    "Tel",
    "Tel:",
    "TEL ",
    "电话:",
    "联系人张先生",
    "本人电话",
)
EMAIL_USERS = ("zhangsan", "li.si", "wang_wu88", "13812345678", "chen-hao", "x", "liu2020")
EMAIL_HOSTS = ("qq.com", "163.com", "126.com", "gov.cn", "example.com.cn", "sina.cn")


def _digits(draw: Draw, n: int, first: str = "0123456789") -> str:
    return draw.choice(first) + "".join(str(draw.randint(0, 9)) for _ in range(n - 1))


def _sep(draw: Draw) -> str:
    return draw.choice(("", " ", "-", ".", "", "-"))


def _width(draw: Draw, text: str) -> str:
    return text.translate(FULL_WIDTH) if draw.randint(0, 4) == 0 else text


def _context(draw: Draw) -> str:
    return "".join(draw.choice(FILLER) for _ in range(draw.randint(0, 6)))


def luhn_complete(body: str) -> str:
    """``body`` followed by the digit that makes it pass the Luhn check."""
    for d in "0123456789":
        total = 0
        for i, ch in enumerate(reversed(body + d)):
            v = int(ch)
            if i % 2:
                v = v * 2 - 9 if v > 4 else v * 2
            total += v
        if total % 10 == 0:
            return body + d
    raise AssertionError("unreachable")


def id_check(body17: str) -> str:
    """The GB 11643 check character of an 18-digit ID number."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(c) * w for c, w in zip(body17, weights, strict=True)) % 11]


def _birth(draw: Draw, lo: int = 1940, hi: int = 2010) -> dt.date:
    return dt.date(draw.randint(lo, hi), 1, 1) + dt.timedelta(days=draw.randint(0, 364))


def mobile(draw: Draw) -> tuple[str, int]:
    digits = draw.choice(MOBILE_HEADS) + _digits(draw, 9)
    shape = draw.randint(0, 2)
    sep = _sep(draw)
    if shape == 0:
        number = digits
    elif shape == 1:
        number = f"{digits[:3]}{sep}{digits[3:7]}{sep}{digits[7:]}"
    else:
        number = f"{digits[:4]}{sep}{digits[4:7]}{sep}{digits[7:]}"
    country = draw.choice(("", "", "", "+86", "+86 ", "86-", "0086", "0"))
    return draw.choice(LABELS) + _width(draw, country + number), 4


def landline(draw: Draw) -> tuple[str, int]:
    area = draw.choice(AREA_CODES)
    local = _digits(draw, 8 if len(area) == 3 else draw.choice((7, 8)), "2345678")
    if draw.randint(0, 3) == 0:
        local = f"{local[:-4]}{draw.choice(('-', ' '))}{local[-4:]}"
    form = draw.randint(0, 3)
    number = f"({area}){local}" if form == 0 else f"{area}{draw.choice(('-', ' ', '', '-'))}{local}"
    label = draw.choice(("", "办公电话", "座机：", "Tel:", "电话"))
    return label + _width(draw, number), 3


def id_card(draw: Draw) -> tuple[str, int]:
    area = _digits(draw, 6, "123456")
    born = _birth(draw)
    if draw.randint(0, 5) == 0:  # the old 15-digit form
        body = f"{area}{born:%y%m%d}{_digits(draw, 3)}"
        return draw.choice(("", "身份证", "身份证号：")) + _width(draw, body), 6
    body17 = f"{area}{born:%Y%m%d}{_digits(draw, 3)}"
    full = body17 + id_check(body17)
    if full.endswith("X") and draw.randint(0, 1):
        full = full[:-1] + "x"
    shape = draw.randint(0, 3)
    if shape == 1:
        full = f"{full[:6]} {full[6:14]} {full[14:]}"
    elif shape == 2:
        full = f"{full[:6]}-{full[6:10]}-{full[10:14]}-{full[14:]}"
    return draw.choice(("", "身份证", "身份证号：", "证件号码", "sfz")) + _width(draw, full), 8


def bank_card(draw: Draw) -> tuple[str, int]:
    length = draw.choice((16, 16, 19, 19, 17, 18))
    head = draw.choice(("62", "62", "60", "4", "5", "9558"))
    number = luhn_complete(head + _digits(draw, length - len(head) - 1))
    if draw.randint(0, 1):
        sep = draw.choice((" ", "-"))
        number = sep.join(number[i : i + 4] for i in range(0, len(number), 4))
    label = draw.choice(("", "卡号", "银行卡", "工资卡：", "账号", "农行卡"))
    return label + _width(draw, number), 8


def email(draw: Draw) -> tuple[str, int]:
    user = draw.choice(EMAIL_USERS)
    return f"{draw.choice(('', '邮箱', 'email:'))}{user}@{draw.choice(EMAIL_HOSTS)}", len(user) - 1


def two_mobiles(draw: Draw) -> tuple[str, int]:
    a = draw.choice(MOBILE_HEADS) + _digits(draw, 9)
    b = draw.choice(MOBILE_HEADS) + _digits(draw, 9)
    return _width(draw, a + b), 8


KINDS: dict[str, Callable[[Draw], tuple[str, int]]] = {
    "mobile": mobile,
    "landline": landline,
    "id_card": id_card,
    "bank_card": bank_card,
    "email": email,
    "two_mobiles": two_mobiles,
}


def personal(draw: Draw, kind: str | None = None) -> Sample:
    """One personal number of ``kind`` (any kind when None) in a short Chinese context."""
    kind = kind or draw.choice(tuple(KINDS))
    number, hidden = KINDS[kind](draw)
    before, after = _context(draw), _context(draw)
    return Sample(kind, before + number + after, len(before), len(before) + len(number), hidden)


def _date(draw: Draw) -> str:
    d = _birth(draw, 2000, 2030)
    t = f"{draw.randint(0, 23):02d}:{draw.randint(0, 59):02d}"
    forms = (
        f"{d:%Y-%m-%d}",
        f"{d:%Y-%m-%d} {t}",
        f"{d:%Y-%m-%d} {t}:{draw.randint(0, 59):02d}",
        f"{d:%Y%m%d}",
        f"{d.year}年{d.month}月{d.day}日",
        f"{d.year}年{d.month}月{d.day}日 {t}",
        f"{d:%Y/%m/%d}",
        f"{d:%Y.%m.%d}",
        f"{d:%Y%m%d}{t.replace(':', '')}",
        f"{d:%Y-%m-%d}T{t}:00+08:00",
    )
    return draw.choice(forms)


def _amount(draw: Draw) -> str:
    n = draw.randint(1, 99_999_999)
    forms = (
        f"{n}元",
        f"{n:,}元",
        f"{n / 100:.2f}元",
        f"{n:,}.{draw.randint(0, 99):02d}元",
        f"{n / 10000:.1f}万元",
        f"人民币{n}元整",
        f"{n}",
    )
    return draw.choice(forms)


def _work_order(draw: Draw) -> str:
    d = _birth(draw, 2018, 2030)
    forms = (
        f"GD{d:%Y%m%d}{_digits(draw, 8)}",
        f"{d:%Y%m%d}{_digits(draw, 8)}",
        f"{d:%Y%m%d}{_digits(draw, 5)}",
        f"SH{d:%Y%m%d}{_digits(draw, 6)}",
        f"No.{d:%Y%m%d}{_digits(draw, 4)}",
        f"{d:%Y}-{_digits(draw, 6)}",
        f"{d:%Y%m%d}{_digits(draw, 10)}",
        f"ZX{_digits(draw, 12)}",
    )
    return draw.choice(forms)


def _count(draw: Draw) -> str:
    n = draw.randint(1, 99_999_999)
    forms = (
        f"共{n}人",
        f"{n}人次",
        f"{n}户",
        f"{n}平方米",
        f"阅读量{n}",
        f"第{n}号",
        f"{n}件",
        f"房号{draw.randint(101, 3299)}",
        f"邮编{_digits(draw, 6, '123456789')}",
        f"时间戳{draw.randint(1_500_000_000_000, 1_900_000_000_000)}",
        f"{draw.randint(1_500_000_000, 1_900_000_000)}",
        f"版本{draw.randint(1, 20)}.{draw.randint(0, 99)}.{draw.randint(0, 99)}",
        f"{draw.randint(0, 100)}.{draw.randint(0, 99)}%",
        f"{draw.randint(2, 9)}{_digits(draw, 6)}",
    )
    return draw.choice(forms)


ORDINARY: dict[str, Callable[[Draw], str]] = {
    "date": _date,
    "amount": _amount,
    "work_order": _work_order,
    "count": _count,
}


def ordinary(draw: Draw, kind: str | None = None) -> tuple[str, str]:
    """``(kind, text)``: an ordinary number (date, amount, work-order number, count) in Chinese context."""
    kind = kind or draw.choice(tuple(ORDINARY))
    return kind, _context(draw) + ORDINARY[kind](draw) + _context(draw)


def hidden_in(masked: str, sample: Sample) -> int:
    """How many characters of the sample's number the masked text replaced."""
    return masked[sample.start : sample.end].count("*")
