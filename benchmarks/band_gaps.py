"""Is a band's gap between two baselines the same on the validation users as on the test users?

The benchmark's band table compares the hybrid with the best baseline *of each band*, picked on
the test users. On a band of a few dozen users that pick is partly luck. This script refits two
or more baselines with the parameters a benchmark run tuned (read from its JSON, no tuning
here) on the same split and on the validation cut of its training part, and prints, per age
band, each model's nDCG@10 and the per-user difference from the first model ± its standard
error, on the validation users and on the test users. A gap that is real for the band shows
with the same sign on both; one that flips is the noise of that many users.

Usage::

    .venv/bin/python benchmarks/band_gaps.py DATASET RUN.json --models ease,als [--seed S]

``RUN.json`` is the ``--json`` of ``recommender benchmark`` on the same dataset; its protocol
is used, and with ``--repeats`` the run of ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.pipeline import FeaturePipeline  # noqa: E402
from recommender.data.datasets import load_dataset  # noqa: E402
from recommender.evaluation.metrics import evaluate, paired_band_gaps  # noqa: E402
from recommender.training.benchmark import (  # noqa: E402
    BASELINES,
    Evaluator,
    ProtocolRun,
    fit_baseline,
    prepare_run,
)


def run_of(doc: dict, seed: int | None) -> dict:
    """The benchmark document of ``seed`` (a repeated run's part, or the single run); the
    first run's when ``seed`` is None."""
    runs = doc.get("repeats") or [doc]
    for run in runs:
        if seed is None or run["seed"] == seed:
            return run
    raise SystemExit(f"the JSON holds seeds {[r['seed'] for r in runs]}, not {seed}")


def lists_of(run: ProtocolRun, doc: dict, names: list[str], seed: int) -> dict:
    """``{part: {name: lists}}`` for the validation users and the test users."""
    baselines = {b.name: b for b in BASELINES}
    parts = {"validation": (run.data.validation, run.val_eval),
             "test": (run.data.full, run.test_eval)}
    out: dict[str, dict] = {part: {} for part in parts}
    for name in names:
        if name not in baselines or name not in doc["models"]:
            raise SystemExit(f"{name!r} is not a baseline of this run: "
                             f"{sorted(set(baselines) & set(doc['models']))}")
        baseline, params = baselines[name], doc["models"][name]["params"]
        for part, (inputs, evaluator) in parts.items():
            model = fit_baseline(baseline, params, inputs, seed)
            out[part][name] = evaluator.recommend(model, baseline.groups)
    return out


def table(evaluator: Evaluator, lists: dict, names: list[str]) -> list[str]:
    """One line per band: users, each model's nDCG@10, the others minus the first ± SE."""
    first, others = names[0], names[1:]
    means = {n: evaluate(lists[n], evaluator.relevant, evaluator.inputs.X.shape[1],
                         user_bands=evaluator.bands)["by_band"] for n in names}
    # first minus each other model, printed the other way round (same standard error)
    gaps = paired_band_gaps(lists[first], {n: lists[n] for n in others}, evaluator.relevant,
                            evaluator.bands)
    lines = []
    for band, gap in gaps[others[0]].items():
        cells = "  ".join(f"{n} {means[n][band]['ndcg@10']:.4f}" for n in names)
        diffs = "  ".join(f"{n} - {first} {-gaps[n][band]['difference']:+.4f} ± "
                          f"{gaps[n][band]['se']:.4f}" for n in others)
        lines.append(f"  {band:<12} {gap['users']:>6}  {cells}  |  {diffs}")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("run_json")
    parser.add_argument("--models", required=True,
                        help="comma-separated baselines; the others are compared with the first")
    parser.add_argument("--seed", type=int, default=None,
                        help="the run's seed (default: its first run's)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if len(names) < 2:
        raise SystemExit("--models needs at least two baselines")
    doc = run_of(json.loads(Path(args.run_json).read_text()), args.seed)
    seed = doc["seed"]
    bundle = load_dataset(args.dataset)
    pipeline = FeaturePipeline(pair_ages=True).fit(bundle)
    run = prepare_run(bundle, pipeline, doc["protocol"], seed,
                      lambda line: print(line, file=sys.stderr))
    lists = lists_of(run, doc, names, seed)
    for part, evaluator in (("validation", run.val_eval), ("test", run.test_eval)):
        print(f"{part} users, {doc['protocol']} on {doc['dataset']}, seed {seed}: "
              "band, users, nDCG@10, per-user difference ± SE")
        print("\n".join(table(evaluator, lists[part], names)))


if __name__ == "__main__":
    main()
