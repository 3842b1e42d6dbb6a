"""What wording the reasons adds to one served list: ``worded`` over a top-10 list.

A served top-10 carries up to about six reasons per course (four on average on the demo
district); this times wording 10 courses x ``--per-course`` reasons drawn from every code, in
each language, and prints p50 and p99 in microseconds next to the in-process top-10 it is part
of (docs/benchmarks.md: p50 1.15 ms).

Usage::

    .venv/bin/python benchmarks/bench_wording.py [--per-course 4] [--repeats 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.serving.wording import LANGUAGES, REASONS, Reason, worded  # noqa: E402

SAMPLE = {"category": "intangible_heritage", "course_id": "K0007",
          "title": "剪纸入门班（2026年秋季）", "band": "elderly", "community_id": "C03",
          "community_name": "文康社区", "count": 3, "bands": ["preschool", "working_age"]}


def _list(per_course: int) -> list[list[Reason]]:
    codes = list(REASONS)
    reasons = [Reason(c, {p: SAMPLE[p] for p in REASONS[c].params}) for c in codes]
    return [[reasons[(i * per_course + j) % len(reasons)] for j in range(per_course)]
            for i in range(10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-course", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20000)
    args = parser.parse_args()
    items = _list(args.per_course)
    print("| language | reasons per list | p50 us | p90 us | p99 us |\n"
          "| --- | ---: | ---: | ---: | ---: |")
    for lang in LANGUAGES:
        times = np.empty(args.repeats)
        for k in range(args.repeats):
            start = time.perf_counter()
            for reasons in items:
                worded(reasons, lang)
            times[k] = time.perf_counter() - start
        p50, p90, p99 = np.percentile(times * 1e6, [50, 90, 99])
        print(f"| {lang} | {10 * args.per_course} | {p50:.1f} | {p90:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
