"""Reposts of one story are one event (one ticket), however they were edited; different stories are not."""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import combinations
from pathlib import Path

from sqlalchemy import select

from service import clock
from service.items.duplicates import assign_events, comparable, compare, strip_repost_noise
from service.ledger.models import Ticket
from service.matching.engine import MatchingEngine
from service.store.base import Item, Store, item_id
from service.store.sqlite import SqliteStore

DATA = Path(__file__).resolve().parents[1] / "data" / "reposts.jsonl"
# The item of the incident report: a 250-character newspaper item.
ORIGINAL_TITLE = "部分校外培训机构“暴雷” 家长退费难"
ORIGINAL = (
    "本报讯（记者 王晓丽）近日，本报接到多名家长反映，城区部分校外培训机构突然停课、关门，"
    "已缴纳的课时费迟迟无法退还。记者走访发现，位于文昌路的一家英语培训机构已人去楼空，"
    "门口贴着“内部整顿”的告示，数十名家长聚集在门前讨要说法。一位家长告诉本报记者，"
    "她去年预交了两年的课时费共计2.6万元，目前仅上了不到十节课。市教育局相关负责人表示，"
    "已会同市场监管部门成立专班，督促培训机构制定退费方案，并提醒家长预付费用不要超过三个月"
    "或60课时，遇到问题可拨打12345热线或到市教育局信访窗口反映，保留好缴费凭证。"
)
REPOST_TITLE = "【转】部分校外培训机构“暴雷”，家长退费难"
REPOST = ORIGINAL.replace("本报", "青川日报") + "（转自青川日报）"
# Another story of the same department that must stay its own event.
OTHER_TITLE = "多所学校食堂饭菜质量引家长不满"
OTHER = (
    "本报讯（记者 李明）近日，多名家长向本报反映，河西区几所中小学食堂饭菜分量少、菜品单一，"
    "部分学生中午吃不饱。记者在校门口随机采访了十余名家长，多数表示孩子回家常说饭菜凉了、油太大。"
    "区教育局表示将组织对辖区学校食堂开展专项检查，督促落实校领导陪餐制度，并邀请家长代表参与"
    "食堂监督，检查结果将向社会公布。"
)


def _news(n: int, title: str, content: str, source: str = "qc-daily", **fields: object) -> Item:
    return Item(
        id=item_id(source, external_id=str(n)),
        source=source,
        channel="media",
        external_id=str(n),
        url=f"http://127.0.0.1:8801/news/{n}.html",
        title=title,
        content=content,
        published_at=clock.now() - timedelta(hours=3),
        fetched_at=clock.now(),
        **fields,  # type: ignore[arg-type]
    )


def _store_batch(store: Store, items: list[Item]) -> list[Item]:
    """What the crawl pipeline does with a batch: group, then upsert."""
    grouped, _ = assign_events(store, items)
    store.upsert(grouped)
    return grouped


def test_short_repost_with_new_headline_and_source_line_joins_the_original(store: Store) -> None:
    assert len(ORIGINAL) >= 240
    original = _store_batch(store, [_news(1, ORIGINAL_TITLE, ORIGINAL)])[0]
    # Crawled later, in another crawl (another process): only the store connects the two.
    repost, other = _store_batch(
        store, [_news(2, REPOST_TITLE, REPOST, source="portal"), _news(3, OTHER_TITLE, OTHER, source="portal")]
    )
    assert original.event_id == original.id
    assert repost.event_id == original.id
    assert other.event_id == other.id
    assert store.get(repost.id).event_id == original.id  # what matching will read


def test_reposts_within_one_batch_share_the_first_items_event(store: Store) -> None:
    first, repost = _store_batch(store, [_news(1, ORIGINAL_TITLE, ORIGINAL), _news(2, REPOST_TITLE, REPOST)])
    assert repost.event_id == first.id


def test_the_edited_repost_makes_one_ticket_for_the_education_department(client) -> None:
    ctx = client.app.state.ctx
    (ctx.settings.config_dir / "departments.yaml").write_text(
        "departments:\n  - id: edu\n    name: 市教育局\n    rules:\n"
        "      - id: edu-training\n        expr: '培训机构 AND (退费 OR 暴雷 OR 跑路)'\n        severity: major\n",
        encoding="utf-8",
    )
    _store_batch(ctx.store, [_news(1, ORIGINAL_TITLE, ORIGINAL)])
    MatchingEngine(ctx).run()
    _store_batch(ctx.store, [_news(2, REPOST_TITLE, REPOST, source="portal")])
    MatchingEngine(ctx).run()
    with ctx.db.session() as session:
        tickets = session.execute(select(Ticket).where(Ticket.department == "edu")).scalars().all()
        assert len(tickets) == 1
        assert len(tickets[0].items) == 2


def test_attribution_markers_and_outlet_names_do_not_count() -> None:
    assert strip_repost_noise(REPOST_TITLE) == strip_repost_noise(ORIGINAL_TITLE)
    assert strip_repost_noise(REPOST) == strip_repost_noise(ORIGINAL)
    lines = "来源：青川日报\n原标题：家长退费难\n编辑：张三\n记者从市教育局获悉，退费方案已出台。\n点击上方蓝字关注我们"
    assert strip_repost_noise(lines) == "记者从市教育局获悉退费方案已出台"


def test_a_truncated_repost_is_contained_in_the_original() -> None:
    cut = ORIGINAL[: len(ORIGINAL) * 2 // 5]
    verdict = compare(comparable(ORIGINAL_TITLE, ORIGINAL), comparable("培训机构暴雷 家长急了", cut))
    assert verdict.duplicate
    assert verdict.containment > 0.95


def test_template_notices_with_other_dates_and_names_are_different_events() -> None:
    notice = (
        "因供电线路检修，{date}8:00至18:00{road}沿线{units}停电，请相关单位和居民提前做好准备。"
        "检修期间如遇特殊情况，送电时间将相应调整，不再另行通知。联系人：{name}。"
    )
    a = notice.format(date="3月5日", road="文昌路", units="文昌小区、阳光花园", name="张工")
    b = notice.format(date="3月12日", road="建设路", units="建设新村、河畔家园", name="李工")
    assert not compare(comparable("停电通知", a), comparable("停电通知", b)).duplicate


def test_the_same_complaint_about_another_estate_is_another_event() -> None:
    text = (
        "市民反映：城东区{estate}小区3栋楼下新开了一家烧烤店，每天营业到凌晨两三点。烧烤的油烟直接往楼上飘，"
        "家里窗户都不敢开。深夜还有食客喝酒划拳，噪音很大，希望城管部门依法处理。"
    )
    a = comparable("烧烤店油烟扰民", text.format(estate="阳光花园"))
    b = comparable("烧烤店油烟扰民", text.format(estate="锦绣家园"))
    verdict = compare(a, b)
    assert verdict.jaccard > 0.8  # nearly the same words…
    assert not verdict.duplicate  # …about another place
    assert verdict.reason == "地点不同"


def test_evaluation_set_precision_and_recall_in_publication_order(tmp_path: Path) -> None:
    """The labelled set of tests/data (README there): reposts grouped, hard negatives kept apart."""
    records = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 400
    # Once, on the embedded store: the store contract covers the candidate lookup on both backends.
    store = SqliteStore(tmp_path / "items.sqlite3")
    order = sorted(records, key=lambda r: (r["kind"] == "repost", r["id"]))
    event: dict[str, str] = {}
    for start in range(0, len(order), 50):
        batch = [_news(n, r["title"], r["content"], source=r["id"]) for n, r in enumerate(order[start : start + 50])]
        for record, grouped in zip(order[start : start + 50], _store_batch(store, batch), strict=True):
            event[record["id"]] = grouped.event_id or grouped.id
    tp = fp = fn = 0
    for a, b in combinations(records, 2):
        same, truth = event[a["id"]] == event[b["id"]], a["story"] == b["story"]
        tp, fp, fn = tp + (same and truth), fp + (same and not truth), fn + (truth and not same)
    assert tp / (tp + fp) >= 0.99
    assert tp / (tp + fn) >= 0.98
