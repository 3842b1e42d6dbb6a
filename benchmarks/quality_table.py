"""The quality table of docs/benchmarks.md, from the JSON files of ``recommender benchmark``.

Usage::

    .venv/bin/python benchmarks/quality_table.py RESULT.json [RESULT.json ...]

One Markdown row per file: test users, the hybrid's nDCG@10 and what ranked its candidates after
the guard, the best baseline and the ratio, popularity by band and the ratio, and the lowest
per-band ratio against the best baseline of that band among bands with at least 30 test users,
with the hybrid's per-user nDCG@10 difference from that baseline ± its standard error (files
written since the benchmark records it). Repeated runs (``--repeats``) show mean ± standard
deviation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommender.training.report import band_comparison, format_gap  # noqa: E402

MIN_BAND_USERS = 30


def _mean(cell) -> float:
    return float(cell["mean"] if isinstance(cell, dict) else cell)


def _cell(cell) -> str:
    if isinstance(cell, dict):
        return f"{cell['mean']:.4f} ± {cell['std']:.4f}"
    return f"{cell:.4f}"


def _ratio(a, b) -> str:
    return f"{_mean(a) / _mean(b):.2f}x" if _mean(b) > 0 else "n/a"


def row(doc: dict) -> str:
    """One Markdown row for a benchmark document (one run or a summary of runs)."""
    runs = doc.get("repeats") or [doc]
    models = doc["summary"]["models"] if "summary" in doc else doc["models"]
    served = sorted({r["models"]["hybrid"].get("guard", {}).get("served_by", "?") for r in runs})
    best = max((m for m in models if m != "hybrid"), key=lambda m: _mean(models[m]["ndcg@10"]))
    bands = [r for r in band_comparison(models) if _mean(r["users"]) >= MIN_BAND_USERS
             and r["baseline"] is not None]
    worst = min(bands, key=lambda r: _mean(r["hybrid"]) / max(_mean(r["baseline"]), 1e-12),
                default=None)
    band_cell = ("-" if worst is None else
                 f"{worst['band']} {_ratio(worst['hybrid'], worst['baseline'])}"
                 + (f" ({format_gap(worst['gap'])})" if worst["gap"] else ""))
    hybrid = models["hybrid"]["ndcg@10"]
    return (f"| {doc['dataset']} | {doc['protocol']} | {len(runs)} | "
            f"{_mean(models['hybrid']['users']):.0f} | {_cell(hybrid)} ({', '.join(served)}) | "
            f"{best} {_cell(models[best]['ndcg@10'])} | {_ratio(hybrid, models[best]['ndcg@10'])}"
            f" | {_ratio(hybrid, models['popularity-by-band']['ndcg@10'])} | {band_cell} |")


def main(argv=None) -> None:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    print("| dataset | protocol | runs | test users | hybrid (ranked by) | best baseline | "
          "hybrid / best | hybrid / pop-by-band | lowest band ratio (30+ users; per-user "
          "difference ± SE) |")
    print("| --- | --- | ---: | ---: | --- | --- | ---: | ---: | --- |")
    for path in paths:
        print(row(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
