"""Build tests/data/reposts.jsonl, the labelled repost evaluation set, from repost_stories.yaml.

Run ``python tests/data/build_reposts.py`` after editing the stories; the output is deterministic
(seeded). How the set is made is documented in tests/data/README.md.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
OUTLETS = ["青川日报", "青川晚报", "河西区融媒体中心", "青川新闻网", "江北发布"]
# Place names of the fictional city by kind; a "same problem, different place" item swaps within a kind.
PLACES = {
    "district": ["河西区", "城东区", "江北区", "青川县"],
    "road": ["文昌路", "建设路", "人民路", "滨江大道", "兴华街", "解放路", "北环路", "东环路", "学府街"],
    "community": ["柳岸社区", "杏林社区", "三河村", "新民村"],
    "estate": ["阳光花园", "锦绣家园", "翠湖小区", "江岸华庭", "建设新村", "学府小区", "文昌小区", "金桂苑"],
    "town": ["石桥镇", "桃源乡"],
}
SYNONYMS = [
    ("近日", "日前"), ("表示", "称"), ("反映", "反应"), ("希望", "盼望"), ("非常", "十分"), ("已经", "已"),
    ("立即", "马上"), ("严重", "较为严重"), ("目前", "眼下"), ("多次", "屡次"), ("记者", "笔者"), ("尽快", "早日"),
]  # fmt: skip
INSERTS = [
    "此事引发网友广泛关注。",
    "不少网友在评论区留言表示支持。",
    "对此，当地多名居民表示有同感。",
    "该消息发布后，阅读量迅速突破十万。",
    "截至发稿时，相关话题仍在持续发酵。",
]
HEADLINE_PREFIX = ["【转】", "【转发】", "转：", "关注｜", "【重磅】", ""]
BOILERPLATE_HEAD = ["点击上方蓝字关注我们", "来源：{outlet}", "原标题：{title}", "编辑：李某某"]
BOILERPLATE_TAIL = [
    "（转自{outlet}）",
    "来源：{outlet}",
    "声明：本文转自{outlet}，版权归原作者所有，如有侵权请联系删除。",
    "责任编辑：张某",
]


def sentences(text: str) -> list[str]:
    """Sentences of a text, each keeping its end mark."""
    return [s for s in re.findall(r"[^。！？\n]+[。！？]?", text) if s.strip()]


def edit_headline(title: str, rnd: random.Random) -> str:
    t = title.replace(" ", rnd.choice(["，", "：", " ", "！"]))
    if rnd.random() < 0.5:
        words = [w for w, _ in SYNONYMS if w in t]
        if words:
            w = rnd.choice(words)
            t = t.replace(w, dict(SYNONYMS)[w], 1)
    if rnd.random() < 0.4:
        t += rnd.choice(["！", "？", "，怎么办", "，有关部门回应了"])
    return rnd.choice(HEADLINE_PREFIX) + t


def change_sentences(text: str, k: int, rnd: random.Random) -> tuple[str, int]:
    """Change ``k`` sentences (at most half of them): reword, cut a clause, delete, or insert one."""
    parts = sentences(text)
    k = max(1, min(k, len(parts) // 2))
    for index in rnd.sample(range(len(parts)), k):
        s = parts[index]
        op = rnd.choice(["reword", "cut", "delete", "insert"])
        if op == "reword":
            found = [(a, b) for a, b in SYNONYMS if a in s]
            if found:
                for a, b in rnd.sample(found, min(2, len(found))):
                    s = s.replace(a, b)
            else:
                s = s.replace("，", "，而且", 1) if "，" in s else "另外，" + s
        elif op == "cut" and "，" in s:
            s = s[: s.rindex("，")] + "。"
        elif op == "delete":
            s = ""
        else:
            s = s + rnd.choice(INSERTS)
        parts[index] = s
    return "".join(parts), k


def attribute(text: str, title: str, outlet: str, rnd: random.Random) -> str:
    text = text.replace("本报", outlet)
    head = rnd.sample(BOILERPLATE_HEAD, rnd.randint(0, 2))
    tail = rnd.sample(BOILERPLATE_TAIL, rnd.randint(1, 2))
    lines = [h.format(outlet=outlet, title=title) for h in head] + [text] + [t.format(outlet=outlet) for t in tail]
    return "\n".join(lines)


def respace(text: str, rnd: random.Random) -> str:
    """Punctuation and spacing as another site prints them."""
    table = {"，": ",", "。": ". ", "：": ":", "“": '"', "”": '"', "（": "(", "）": ")"}
    if rnd.random() < 0.5:
        text = "".join(table.get(ch, ch) for ch in text)
    return "\n\n".join(p.strip() for p in text.split("\n"))


def truncate(text: str, rnd: random.Random) -> str:
    parts = sentences(text)
    keep = max(2, round(len(parts) * rnd.uniform(0.35, 0.7)))
    return "".join(parts[:keep]) + rnd.choice(["……", "（未完）", "\n点击阅读全文", ""])


def reposts(story: dict[str, Any], rnd: random.Random) -> list[dict[str, Any]]:
    title, text = story["title"], story["content"]
    outlet = rnd.choice(OUTLETS)
    out = []

    def add(variant: str, t: str, c: str) -> None:
        out.append({"variant": variant, "title": t, "content": c})

    # The incident of issue 13: new headline, 本报 -> outlet, a source line appended.
    add("headline+attribution", edit_headline(title, rnd), attribute(text, title, outlet, rnd))
    add("respaced+boilerplate", title, respace(attribute(text, title, rnd.choice(OUTLETS), rnd), rnd))
    add("truncated", edit_headline(title, rnd), truncate(text, rnd))
    k = rnd.randint(1, 2)
    changed, k = change_sentences(text, k, rnd)
    add(f"changed-{k}", title, changed)
    k = rnd.randint(3, 5)
    changed, k = change_sentences(text, k, rnd)
    add(f"changed-{k}+headline", edit_headline(title, rnd), changed)
    changed, k = change_sentences(truncate(text, rnd), rnd.randint(1, 2), rnd)
    add(f"truncated+changed-{k}+attribution", edit_headline(title, rnd), attribute(changed, title, outlet, rnd))
    return out


def swap_places(text: str, rnd: random.Random, mapping: dict[str, str], taken: set[str]) -> str:
    """Each place of a kind replaced by another of that kind, never one an earlier variant used."""
    for kind in PLACES.values():
        for place in kind:
            if place in text and place not in mapping:
                free = [p for p in kind if p != place and p not in taken] or [p for p in kind if p != place]
                mapping[place] = rnd.choice(free)
                taken.add(mapping[place])
    for old, new in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, "\x00" + new + "\x01")
    return text.replace("\x00", "").replace("\x01", "")


def fill_templates(templates: list[dict[str, str]], rnd: random.Random, per_template: int) -> list[dict[str, Any]]:
    names = ["张建国", "李红梅", "王志强", "刘海燕", "陈晓东", "杨丽华", "赵永军", "黄文斌", "周慧敏", "吴卫东"]
    reasons = ["管网改造施工", "道路维修", "马拉松比赛", "桥梁检测", "供水设备检修"]
    depts = ["市交通运输局", "市水务局", "市民政局", "市文旅局", "市卫健委"]
    roads = PLACES["road"]
    estates = PLACES["estate"] + PLACES["community"]
    out = []
    for ti, tpl in enumerate(templates):
        for n in range(per_template):
            month, day = rnd.randint(1, 12), rnd.randint(1, 25)
            values = {
                "road": rnd.choice(roads),
                "units": "、".join(rnd.sample(estates, 2)),
                "name": rnd.choice(names),
                "phone": f"{rnd.randint(2000000, 8999999)}",
                "month": month, "day": day, "day2": day + rnd.randint(1, 4), "day0": max(1, day - 2),
                "year": rnd.choice([2025, 2026]), "start": rnd.choice([7, 8, 9]), "end": rnd.choice([17, 18, 19]),
                "age": rnd.randint(35, 52), "edu": rnd.choice(["大学", "研究生"]), "dept": rnd.choice(depts),
                "old": rnd.choice(["办公室主任", "科长"]), "new": rnd.choice(["副局长", "总工程师"]),
                "reason": rnd.choice(reasons),
                "from": rnd.choice(roads), "to": rnd.choice(roads),
            }  # fmt: skip
            out.append(
                {
                    "id": f"t{ti + 1}-{n + 1:02d}",
                    "kind": "template",
                    "variant": f"template-{ti + 1}",
                    "channel": "media",
                    "title": tpl["title"].format(**values),
                    "content": tpl["content"].format(**values),
                }
            )
    return out


def build() -> list[dict[str, Any]]:
    data = yaml.safe_load((HERE / "repost_stories.yaml").read_text(encoding="utf-8"))
    rnd = random.Random(13)
    records: list[dict[str, Any]] = []
    for story in data["stories"]:
        sid = story["id"]
        base = {"story": sid, "event": sid, "channel": story["channel"]}
        records.append({"id": f"{sid}-0", "kind": "original", "variant": "original", **base,
                        "title": story["title"], "content": story["content"]})  # fmt: skip
        for n, variant in enumerate(reposts(story, rnd), start=1):
            records.append({"id": f"{sid}-{n}", "kind": "repost", **base, **variant})
        if story["channel"] in ("hotline", "mailbox"):
            # The same complaint about other places: the same words, a different event.
            taken: set[str] = set()
            for n in range(2):
                mapping: dict[str, str] = {}
                title = swap_places(story["title"], rnd, mapping, taken)
                content = swap_places(story["content"], rnd, mapping, taken)
                if content == story["content"]:
                    continue
                content = content.replace("来电人反映", "市民反映", 1) if n else content
                records.append({"id": f"{sid}-p{n + 1}", "kind": "same_problem", "variant": "same-problem-other-place",
                                "story": f"{sid}-p{n + 1}", "event": f"{sid}-p{n + 1}", "channel": story["channel"],
                                "title": title, "content": content})  # fmt: skip
    for n, f in enumerate(data["followups"], start=1):
        records.append({"id": f"f{n:02d}", "kind": "followup", "variant": "followup", "story": f"f{n:02d}",
                        "event": f["story"], "channel": "media",
                        "title": f["title"], "content": f["content"]})  # fmt: skip
    for n, s in enumerate(data["same_place"], start=1):
        records.append({"id": f"q{n:02d}", "kind": "same_place", "variant": "same-place-other-problem",
                        "story": f"q{n:02d}", "event": f"q{n:02d}", "channel": "hotline",
                        "title": s["title"], "content": s["content"]})  # fmt: skip
    for t in fill_templates(data["templates"], rnd, per_template=15):
        records.append({**t, "story": t["id"], "event": t["id"]})
    return records


def main() -> None:
    records = build()
    path = HERE / "reposts.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(f"{len(records)} items -> {path}: {kinds}")


if __name__ == "__main__":
    main()
