"""Personal-data masking: what is masked, what is kept, and what is left alone."""

from __future__ import annotations

import sys

import pytest
from pydantic import BaseModel

from service.masking import _FOLD, _RAW_MAYBE_MASKED, _view, mask_for, mask_text, mask_value
from service.principal import Principal


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("市民电话13812345678反映", "市民电话138****5678反映"),
        ("联系方式：138-1234-5678", "联系方式：138-****-5678"),
        ("+86 138 1234 5678", "+86 138 **** 5678"),
        ("手机１３８１２３４５６７８，请回电", "手机１３８****５６７８，请回电"),
        ("８６－１５９１２３４５６７８", "８６－１５９****５６７８"),
        ("Tel: 19912345678.", "Tel: 199****5678."),
        ("①13812345678", "①138****5678"),
        ("办公电话010-12345678", "办公电话010-****5678"),
        ("0571-88881234转", "0571-****1234转"),
        ("(0755)12345678", "(0755)****5678"),
        ("身份证号110101199001011234", "身份证号110101********1234"),
        ("证件11010119900101123X。", "证件110101********123X。"),
        ("证件１１０１０１１９９００１０１１２３ｘ", "证件１１０１０１********１２３ｘ"),
        ("旧证110101900101123", "旧证110101******123"),
        ("卡号6222021234567890128", "卡号6222***********0128"),
        ("卡号 6222 0212 3456 7890", "卡号 6222 **** **** 7890"),
        ("两个号码13812345678和13987654321", "两个号码138****5678和139****4321"),
        ("卡号6222021234567890123", "卡号6222***********0123"),
        # Formats that escaped the masker (issue 11): dots, glued Latin prefixes, split ID numbers, a long-distance
        # 0 before a mobile, two numbers run together, e-mail addresses.
        ("电话138.1234.5678", "电话138.****.5678"),
        ("qq13812345678", "qq138****5678"),
        ("wx13812345678", "wx138****5678"),
        ("Tel13812345678", "Tel138****5678"),
        ("身份证110101 19900307 4514", "身份证110101 ******** 4514"),
        ("110101 19900307 4514", "110101 ******** 4514"),
        ("110101-1990-0307-4514", "110101-****-****-4514"),
        ("0138-1234-5678", "0138-****-5678"),
        ("电话1381234567813912345678", "电话138****5678139****5678"),
        ("邮箱zhangsan@example.com", "邮箱z*******@example.com"),
        ("QQ号：123456789", "QQ号：12*****89"),
        ("1381 234 5678", "138* *** 5678"),
    ],
)
def test_personal_numbers_are_masked_keeping_head_and_tail(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2023-07-21 10:00:00",
        "2023年7月21日 14:30",
        "20230721",
        "时间戳1690000000000",
        "工单编号2023072100123",
        "工单号GD2023072110300001",
        "item 3f9a13812345678bc0",
        "金额12345678元",
        "12位138123456789不是手机号",
        "门牌号88号，邮编310000",
        "工单号2023072110300001",  # 16 bare digits starting with a year: no card scheme, fails Luhn anyway
        "受理编号203009205105119363",  # 18 digits, date-like, but the ID check character is wrong
        "共计13812人次",
        "",
    ],
)
def test_dates_work_order_numbers_and_identifiers_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_mask_value_walks_dicts_lists_and_models() -> None:
    class Reply(BaseModel):
        text: str
        url: str

    value = {"items": [{"content": "电话13812345678"}], "reply": Reply(text="回电13912345678", url="x?id=13812345678")}
    masked = mask_value(value)
    assert masked["items"][0]["content"] == "电话138****5678"
    assert masked["reply"].text == "回电139****5678"
    assert value["items"][0]["content"] == "电话13812345678", "the original stays unmasked"


def test_mask_value_leaves_identifiers_whole() -> None:
    """An item id such as ``083678717668bd31…`` reads as the fixed line 0836-78717668: masked, the alert
    pointed at an item that does not exist (one alert in ~800 of a generated burst)."""

    class Alert(BaseModel):
        id: int
        item_id: str
        rule_ids: list[str]
        source: str
        title: str

    alert = Alert(
        id=1, item_id="083678717668bd31ec20fb65", rule_ids=["r13812345678"], source="s", title="电话13812345678"
    )
    masked = mask_value([alert, {"item_id": "083678717668bd31ec20fb65", "content": "电话13812345678"}])
    assert masked[0].item_id == "083678717668bd31ec20fb65"
    assert masked[0].rule_ids == ["r13812345678"]
    assert masked[0].title == "电话138****5678"
    assert masked[1] == {"item_id": "083678717668bd31ec20fb65", "content": "电话138****5678"}


def test_mask_value_fields_limits_masking_to_the_named_keys() -> None:
    row = {"content": "电话13812345678", "url": "http://h/d?tel=13812345678"}
    assert mask_value(row, fields=("content",)) == {"content": "电话138****5678", "url": row["url"]}


@pytest.mark.parametrize(("role", "masked"), [("admin", False), ("officer", True), ("leader", True), ("auditor", True)])
def test_mask_for_depends_on_the_role(role: str, masked: bool) -> None:
    principal = Principal(user_id=1, username="u", role=role)
    result = mask_for(principal, {"content": "电话13812345678"})
    assert (result["content"] == "电话138****5678") is masked


def test_log_lines_are_masked(tmp_path) -> None:
    from loguru import logger

    from service.logs import setup_logging

    setup_logging("INFO", tmp_path)
    try:
        logger.info("crawled item with 联系电话13812345678")
        logger.complete()
    finally:
        logger.remove()  # close the file sink in tmp_path
        logger.add(sys.stderr, level="INFO")
    written = (tmp_path / "yuqing.jsonl").read_text(encoding="utf-8")
    assert "138****5678" in written
    assert "13812345678" not in written


def test_the_quick_skip_misses_no_character_that_folds_into_a_digit_or_an_at_sign() -> None:
    # mask_text skips a text without four digits in a row or an at sign before folding it: every character
    # whose folded form is an ASCII digit must count as a digit there, and every one folding into "@" as one.
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        folded = char.translate(_FOLD)
        if folded.isascii() and folded.isdigit():
            assert _RAW_MAYBE_MASKED.search(char * 4), hex(code)
        elif folded == "@":
            assert _RAW_MAYBE_MASKED.search(char), hex(code)
    assert mask_text("电话１３８１２３４５６７８，邮箱ａ１＠ｂ．ｃｎ") == "电话１３８****５６７８，邮箱ａ*＠ｂ．ｃｎ"
    assert mask_text("关联条目2条，第123次") == "关联条目2条，第123次"


def test_the_detection_view_by_table_reads_every_character_as_the_per_character_fold() -> None:
    """The view is built by a table look-up (was str.translate per character): the same text for any input."""
    for code in range(0x10000):
        if 0xD800 <= code < 0xE000:
            continue
        text = f"中{chr(code)}１"
        assert _view(text) == text.translate(_FOLD), hex(code)
    for text in ("电话\ud800１３８", "😀１３８０", "\uffff１", "\ufa6c１"):
        assert _view(text) == text.translate(_FOLD)
