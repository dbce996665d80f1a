"""Matching throughput: the automaton matcher against a naive regex loop and a bare automaton scan.

Usage: ``python benchmarks/matching.py [--rules 1000,10000,50000] [--items 1000] [--naive-items 20] [--rounds 3]
[--chunk 25]``

Items are generated 12345-style complaints (300-2,000 characters) naming a few places out of a pool of
100,000; rules are the structured kind officers write (place + subject + event, minus exclusions), 40% of
them written as equivalent expressions. The naive baseline compiles one regex per rule from the
benchmark's own generated terms and runs every rule on every item; the bare scan runs the same terms'
automaton over the raw texts without folding or rule evaluation (an upper bound for the matcher), and
fold+scan folds each text with the product's own folding before that scan. The matcher side produces the
hits (rule, department, severity); a hit's highlights are found when first read, so a further side
(m+hl) also reads every hit's highlights, as building an alert does.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import ahocorasick

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.folding import fold, fold_term
from service.rules.matcher import CompiledRule, Matcher, compile_rule


def _words(text: str) -> list[str]:
    return text.split()


PLACE_HEADS = _words(
    "青川 河西 东湖 南山 北关 城南 新华 建设 人民 解放 幸福 和平 光明 长江 黄河 金山 银湖 凤凰 龙泉 白云 "
    "东风 红旗 胜利 朝阳 文化 工农 团结 友谊 振兴 富强 民主 前进 向阳 春晖 桃源 柳林 松柏 翠竹 梅园 兰亭"
)
PLACE_TAILS = _words("区 镇 街道 社区 村 路 小区 花园 家园 大道 新村 苑 里 广场 园区")
UNITS = _words("化工厂 建材市场 物流园 中学 小学 幼儿园 卫生院 农贸市场 加油站 污水处理厂 养殖场 工地 商场 酒店")
SUBJECTS = _words(
    "物业 开发商 施工方 商户 餐馆 工厂 企业 学校 医院 公交公司 供暖公司 自来水公司 供电所 城管 中介 房东 "
    "培训机构 超市 快递站 养殖户 渣土车 出租车"
)
EVENTS = _words(
    "噪音 扰民 异味 排污 污染 偷排 漏水 停水 停电 拖欠 乱收费 违建 占道 油烟 堵塞 积水 塌陷 裂缝 欠薪 推诿 "
    "不作为 乱停车 垃圾堆放 夜间施工 安全隐患 食物中毒 变质 虚假宣传 退费难"
)
EXCLUDES = _words("招聘 演练 广告 表扬 感谢 征求意见 公示")
FILLER = _words(
    "市民 来电 反映 本人 我们 居民 多次 投诉 至今 没有 解决 希望 相关部门 尽快 处理 严重 影响 生活 休息 "
    "孩子 老人 上班 每天 晚上 早上 附近 门口 楼下 周边 已经 一直 问题 情况 要求 核实 回复 工作人员 电话 "
    "联系 表示 协调 现场 查看 整改 责令 依法 督促 答复 满意 不满意 诉求 办理"
)
PUNCT = _words("， ， ， 。 。 、 ； ： ！ ？ （ ） …… “ ”")


def place_pool(rng: random.Random, size: int) -> list[str]:
    """Distinct place and unit names like 青川镇东风村 or 光明路化工厂."""
    names: set[str] = set()
    while len(names) < size:
        head = rng.choice(PLACE_HEADS) + rng.choice(PLACE_TAILS)
        tail = rng.choice(UNITS) if rng.random() < 0.4 else rng.choice(PLACE_HEADS) + rng.choice(PLACE_TAILS)
        names.add(head + tail)
    return sorted(names)


def make_item(rng: random.Random, places: list[str]) -> tuple[str, str]:
    """A title and a 300-2,000 character complaint mentioning a few places, subjects and events."""
    named = rng.sample(places, rng.randint(1, 4))
    title = f"关于{rng.choice(named)}{rng.choice(SUBJECTS)}{rng.choice(EVENTS)}的投诉"
    target = rng.randint(300, 2000)
    parts: list[str] = [f"{rng.randint(2023, 2025)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日，"]
    length = len(parts[0])
    while length < target:
        roll = rng.random()
        if roll < 0.04:
            word = rng.choice(named)
        elif roll < 0.12:
            word = rng.choice(SUBJECTS)
        elif roll < 0.2:
            word = rng.choice(EVENTS)
        elif roll < 0.3:
            word = rng.choice(PUNCT)
        elif roll < 0.33:
            word = f"{rng.randint(1, 30)}号楼" if rng.random() < 0.5 else "１２３４５"
        else:
            word = rng.choice(FILLER)
        parts.append(word)
        length += len(word)
    return title, "".join(parts)


@dataclass(frozen=True)
class Spec:
    id: str
    regions: tuple[str, ...]
    subjects: tuple[str, ...]
    events: tuple[str, ...]
    exclude: tuple[str, ...]


def make_rules(rng: random.Random, count: int, places: list[str]) -> list[Spec]:
    """Structured rules: 1-3 places, 1-3 subjects, 1-4 events, 0-2 exclusions."""
    return [
        Spec(
            f"r{i}",
            tuple(rng.sample(places, rng.randint(1, 3))),
            tuple(rng.sample(SUBJECTS, rng.randint(1, 3))),
            tuple(rng.sample(EVENTS, rng.randint(1, 4))),
            tuple(rng.sample(EXCLUDES, rng.randint(0, 2))),
        )
        for i in range(count)
    ]


def compile_spec(spec: Spec, as_expression: bool) -> CompiledRule:
    """The rule in structured form, or as the same rule written as an expression."""
    if not as_expression:
        return compile_rule(
            spec.id,
            "bench",
            "normal",
            regions=spec.regions,
            subjects=spec.subjects,
            events=spec.events,
            exclude=spec.exclude,
        )
    groups = [f"({' OR '.join(words)})" for words in (spec.regions, spec.subjects, spec.events)]
    expr = " AND ".join(groups)
    if spec.exclude:
        expr += f" AND NOT ({' OR '.join(spec.exclude)})"
    return compile_rule(spec.id, "bench", "normal", expr)


class NaiveRule:
    """One compiled regex per rule, finding any of its terms; then the structured logic on what it found."""

    def __init__(self, spec: Spec) -> None:
        terms = sorted({*spec.regions, *spec.subjects, *spec.events, *spec.exclude}, key=len, reverse=True)
        self.spec = spec
        self.regex = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)

    def matches(self, title: str, content: str) -> bool:
        found = set(self.regex.findall(title)) | set(self.regex.findall(content))
        s = self.spec
        return (
            not found.isdisjoint(s.regions)
            and not found.isdisjoint(s.subjects)
            and not found.isdisjoint(s.events)
            and found.isdisjoint(s.exclude)
        )


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def run(
    rule_count: int, items: list[tuple[str, str]], places: list[str], naive_items: int, rounds: int, chunk: int
) -> dict[str, float]:
    rng = random.Random(rule_count)
    specs = make_rules(rng, rule_count, places)

    started = time.process_time()
    matcher = Matcher.build([compile_spec(s, as_expression=i % 5 < 2) for i, s in enumerate(specs)])
    build = time.process_time() - started

    bare = ahocorasick.Automaton()
    for term in {fold_term(t) for s in specs for t in (*s.regions, *s.subjects, *s.events, *s.exclude)}:
        bare.add_word(term, len(term))
    bare.make_automaton()

    matcher.match(*items[0])  # first call builds the folding tables
    naive_rules = [NaiveRule(s) for s in specs]
    subset = items[:naive_items]
    counts = {"hits": 0, "highlights": 0, "naive_hits": 0}

    def run_matcher(batch: list[tuple[str, str]]) -> None:
        for title, content in batch:
            counts["hits"] += len(matcher.match(title, content))

    def run_subset(batch: list[tuple[str, str]]) -> None:
        for title, content in batch:  # the matcher on the naive loop's items (not counted twice)
            matcher.match(title, content)

    def run_highlighted(batch: list[tuple[str, str]]) -> None:
        # What an alert reads on top of matching: every hit's highlights (found on first access).
        for title, content in batch:
            for hit in matcher.match(title, content):
                counts["highlights"] += len(hit.highlights)

    def run_bare(batch: list[tuple[str, str]]) -> None:
        for title, content in batch:
            for _ in bare.iter(title):
                pass
            for _ in bare.iter(content):
                pass

    def run_folded(batch: list[tuple[str, str]]) -> None:
        for title, content in batch:
            for _ in bare.iter(fold(title).text):
                pass
            for _ in bare.iter(fold(content).text):
                pass

    keys = matcher._automaton  # the matcher's own automaton: only the terms that select candidate rules

    def run_keys(batch: list[tuple[str, str]]) -> None:
        for title, content in batch:
            for _ in keys.iter(fold(title).text):
                pass
            for _ in keys.iter(fold(content).text):
                pass

    def run_naive(batch: list[tuple[str, str]]) -> None:
        for title, content in batch:
            counts["naive_hits"] += sum(1 for rule in naive_rules if rule.matches(title, content))

    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    # side: (function, items it runs on in one round, chunks of them timed in turn with the other sides)
    sides = {
        "matcher": (run_matcher, len(items), chunks),
        "highlighted": (run_highlighted, len(items), chunks),
        "bare": (run_bare, len(items), chunks),
        "folded": (run_folded, len(items), chunks),
        "keys": (run_keys, len(items), chunks),
        "naive": (run_naive, len(subset), [subset]),
        "matcher_subset": (run_subset, len(subset), [subset]),
    }
    # Interleaved: every round runs every side on the same items, chunk by chunk (the three scans take
    # turns on each chunk of ``chunk`` items, in an order rotated per chunk and round), so a burst of load
    # on the shared machine falls on all sides alike; the rate reported is the median round's.
    times: dict[str, list[float]] = {name: [] for name in sides}
    walls: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for round_no in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        waited = dict.fromkeys(names, 0.0)
        for step in range(max(len(batches) for _f, _n, batches in sides.values())):
            turn = (round_no + step) % len(names)
            for name in names[turn:] + names[:turn]:
                func, _count, batches = sides[name]
                if step < len(batches):
                    started, wall = time.process_time(), time.perf_counter()
                    func(batches[step])
                    spent[name] += time.process_time() - started
                    waited[name] += time.perf_counter() - wall
        for name in names:
            times[name].append(spent[name])
            walls[name].append(waited[name])
    rates = {name: rate(sides[name][1], statistics.median(times[name])) for name in sides}
    wall_rates = {name: rate(sides[name][1], statistics.median(walls[name])) for name in sides}
    matcher_rate, bare_rate, folded_rate, naive_rate = (rates[n] for n in ("matcher", "bare", "folded", "naive"))
    hits, highlights = counts["hits"] / rounds, counts["highlights"] / rounds
    naive_hits = counts["naive_hits"] // rounds
    naive_items = len(subset)
    automaton_hits = sum(len(matcher.match(t, c)) for t, c in subset)
    return {
        "rules": rule_count,
        "terms": matcher.term_count,
        "key_terms": matcher.key_term_count,
        "m_keys": rates["matcher"] / rates["keys"],
        "build_s": build,
        "matcher": matcher_rate,
        "highlighted": rates["highlighted"],
        "wall_m_bare": wall_rates["matcher"] / wall_rates["bare"],
        "wall_m_folded": wall_rates["matcher"] / wall_rates["folded"],
        "bare": bare_rate,
        "folded": folded_rate,
        "naive": naive_rate,
        "matcher_subset": rates["matcher_subset"],
        "naive_items": naive_items,
        "hits_per_item": hits / len(items),
        "highlights_per_item": highlights / len(items),
        "hits_agree": naive_hits == automaton_hits,
    }


def main() -> None:
    """Generate the data, run each rule count, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default="1000,10000,50000", help="comma-separated rule counts")
    parser.add_argument("--items", type=int, default=1000, help="items for the matcher and the bare scan")
    parser.add_argument("--naive-items", type=int, default=20, help="items the naive loop (and the matcher) share")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--chunk", type=int, default=25, help="items each side runs before the next side's turn")
    parser.add_argument("--seed", type=int, default=12345)
    # Rules are anchored on places: a rule set of 50k rules watches tens of thousands of them.
    parser.add_argument("--places", type=int, default=100000, help="distinct place and unit names")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    places = place_pool(rng, args.places)
    items = [make_item(rng, places) for _ in range(args.items)]
    chars = sum(len(t) + len(c) for t, c in items) / len(items)
    print(f"python {sys.version.split()[0]}, {len(items)} items, {chars:.0f} characters per item on average")
    header = (
        f"{'rules':>6} {'terms':>6} {'build s':>7} {'matcher/s':>9} {'bare/s':>7} {'m/bare':>6} "
        f"{'fold+scan/s':>11} {'m/f+s':>5} {'wall m/b':>8} {'m/f+s':>5} {'m+hl/s':>7} {'m+hl/f+s':>8} "
        f"{'naive/s':>8} {'(items)':>7} {'speedup':>8} {'hits/item':>9} {'hl/item':>7} {'agree':>5} "
        f"{'keys':>6} {'m/keys':>6}"
    )
    print(header)
    for count in (int(c) for c in args.rules.split(",")):
        r = run(count, items, places, args.naive_items, args.rounds, args.chunk)
        print(
            f"{r['rules']:>6} {r['terms']:>6} {r['build_s']:>7.2f} {r['matcher']:>9.0f} {r['bare']:>7.0f} "
            f"{r['matcher'] / r['bare']:>6.2f} {r['folded']:>11.0f} {r['matcher'] / r['folded']:>5.2f} "
            f"{r['wall_m_bare']:>8.2f} {r['wall_m_folded']:>5.2f} {r['highlighted']:>7.0f} "
            f"{r['highlighted'] / r['folded']:>8.2f} "
            f"{r['naive']:>8.2f} {r['naive_items']:>7} {r['matcher_subset'] / r['naive']:>7.0f}x "
            f"{r['hits_per_item']:>9.2f} {r['highlights_per_item']:>7.1f} {'yes' if r['hits_agree'] else 'NO':>5} "
            f"{r['key_terms']:>6} {r['m_keys']:>6.2f}",
            flush=True,
        )
    print(
        "rates are items per CPU second of this process (time.process_time), steady on a busy machine;\n"
        "'wall' columns are the same ratios from wall-clock medians (time.perf_counter).\n"
        "matcher: fold + scan + rule evaluation (the hits); m+hl: the same plus every hit's highlights, as\n"
        "an alert reads them; bare: the same terms' automaton over the raw texts;\n"
        "fold+scan: folding plus that scan, no rules; naive: one regex per rule, every rule on every item;\n"
        "speedup = matcher / naive on the same --naive-items items; all sides interleaved per round and per\n"
        "--chunk items, medians of the rounds;\n"
        "agree: the naive loop and the matcher found the same number of hits;\n"
        "keys: terms in the matcher's automaton (those that select candidate rules; the others are looked up\n"
        "only for candidates); m/keys: the matcher against fold + a bare scan of that automaton alone."
    )


if __name__ == "__main__":
    main()
