"""The personal-data masker: recall, false positives and cost per MB, against a naive one-regex masker.

Usage: ``python benchmarks/masking.py [--samples 100000] [--rounds 5] [--seed 11]``

The corpus comes from tests/masking_corpus.py: personal numbers (mobiles with spaces/dots/hyphens/full-width
digits/+86/0/qq/wx/Tel/电话 prefixes, landlines, 15/18-digit ID numbers split or not, Luhn-valid bank cards,
e-mail, two mobiles run together) in Chinese context, and ordinary numbers (dates, amounts, work-order
numbers, phone-like counts). Recall: the masked form hides at least what it must of each number.
False positives: an ordinary-number text changed at all. Cost: CPU seconds per MB of 12345-style text
(interleaved rounds, median), against a baseline masking bare 11-digit mobiles with one regex.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.masking import mask_text
from tests.masking_corpus import hidden_in, ordinary, personal

_NAIVE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def naive_mask(text: str) -> str:
    """The baseline: what a first masker does (bare mobiles only)."""
    return _NAIVE.sub(r"\1****\3", text)


def recall(mask, samples) -> tuple[float, Counter, Counter]:  # type: ignore[no-untyped-def]
    missed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for s in samples:
        total[s.kind] += 1
        if hidden_in(mask(s.text), s) < s.hidden:
            missed[s.kind] += 1
    return 1 - sum(missed.values()) / len(samples), missed, total


def false_positives(mask, texts) -> tuple[float, Counter, Counter]:  # type: ignore[no-untyped-def]
    changed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for kind, text in texts:
        total[kind] += 1
        if mask(text) != text:
            changed[kind] += 1
    return sum(changed.values()) / len(texts), changed, total


def document(rng: random.Random, size: int) -> str:
    """About ``size`` characters of complaints: mostly prose, a number every 200 characters or so."""
    parts: list[str] = []
    length = 0
    prose = "市民来电反映小区物业长期拖欠维修基金，多次投诉至今没有解决，希望相关部门尽快处理。"
    while length < size:
        parts.append(prose * rng.randint(1, 4))
        parts.append(personal(rng).text if rng.random() < 0.5 else ordinary(rng)[1])
        length += len(parts[-1]) + len(parts[-2])
    return "".join(parts)


def cost(mask, text: str) -> float:  # type: ignore[no-untyped-def]
    start = time.process_time()
    mask(text)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    samples = [personal(rng) for _ in range(args.samples)]
    texts = [ordinary(rng) for _ in range(args.samples)]

    print(f"corpus: {len(samples)} personal numbers, {len(texts)} ordinary-number texts (seed {args.seed})")
    print(f"{'masker':8} {'recall':>9} {'false pos':>10}")
    for name, mask in (("yuqing", mask_text), ("naive", naive_mask)):
        r, missed, total = recall(mask, samples)
        f, changed, ftotal = false_positives(mask, texts)
        print(f"{name:8} {r:9.4%} {f:10.4%}")
        print("         missed:  " + ", ".join(f"{k} {missed[k]}/{total[k]}" for k in sorted(total)))
        print("         changed: " + ", ".join(f"{k} {changed[k]}/{ftotal[k]}" for k in sorted(ftotal)))

    text = document(rng, 1_000_000)
    megabytes = len(text.encode("utf-8")) / 1e6
    ours: list[float] = []
    base: list[float] = []
    for _ in range(args.rounds):  # interleaved, so load on the machine hits both alike
        ours.append(cost(mask_text, text))
        base.append(cost(naive_mask, text))
    ours_mb = statistics.median(ours) / megabytes
    base_mb = statistics.median(base) / megabytes
    print(
        f"cost: {ours_mb * 1000:.1f} ms CPU per MB (naive {base_mb * 1000:.1f} ms/MB, ratio {ours_mb / base_mb:.1f}x) "
        f"on {megabytes:.2f} MB, median of {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
