"""One shape of unseen data, made from a real dataset in the generic benchmark format.

Real exports differ from the datasets the engine was measured on in what they leave out and
how they write it: no users file, no items file, items with a title only, timestamps by the
month, rows written twice, weights, many users with a single interaction. The shapes suite in
the tests runs every protocol on such shapes at a toy size; this script makes each shape from a
real dataset (MovieLens-100k, ``benchmarks/movielens_dataset.py``), so that the benchmark can
say how the hybrid ranks against the baselines on it, with enough users to mean something::

    .venv/bin/python benchmarks/dataset_variant.py var/quality/ml100k var/quality/ml100k-monthly \\
        --variant monthly

Every variant changes one thing of the source and copies the rest as it is.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

FILES = ("interactions.csv", "users.csv", "items.csv")

VARIANTS = {
    "no-users": "no users.csv: every user's age band is unknown",
    "no-items": "no items.csv: no category, tags or title for any item",
    "bare-items": "items.csv with item_id and title only",
    "monthly": "each timestamp cut to the first day of its month (a date, heavy ties)",
    "duplicates": "a fifth of the interaction rows written twice",
    "weights": "a weight column: positive numbers drawn log-normally (0.01 .. 100s)",
    "one-interaction-users": "half of the users keep only their first interaction",
}


def _read(source: Path, name: str) -> pd.DataFrame | None:
    path = source / name
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None


def _timestamps(inter: pd.DataFrame) -> pd.Series:
    """The source's timestamps as instants (epoch seconds or ISO text, as the source has them)."""
    text = inter["timestamp"]
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all():
        return pd.to_datetime(numeric, unit="s", utc=True)
    return pd.to_datetime(text, utc=True, format="ISO8601")


def make(source: Path, out: Path, variant: str, seed: int = 0) -> dict[str, int]:
    """Write ``variant`` of the dataset in ``source`` to ``out``; return the rows of each file."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    if not (source / "interactions.csv").exists():
        raise FileNotFoundError(f"{source} has no interactions.csv")
    rng = np.random.default_rng(seed)
    frames = {name: _read(source, name) for name in FILES}
    inter = frames["interactions.csv"]
    if variant == "no-users":
        frames["users.csv"] = None
    elif variant == "no-items":
        frames["items.csv"] = None
    elif variant == "bare-items" and frames["items.csv"] is not None:
        frames["items.csv"] = frames["items.csv"][["item_id", "title"]]
    elif variant == "monthly":
        month = _timestamps(inter).dt.tz_localize(None).dt.to_period("M").dt.start_time
        inter = inter.assign(timestamp=month.dt.strftime("%Y-%m-%d"))
    elif variant == "duplicates":
        again = inter.sample(frac=0.2, random_state=seed)
        inter = pd.concat([inter, again]).sort_index(kind="stable")
    elif variant == "weights":
        weight = np.round(rng.lognormal(0.0, 1.5, len(inter)), 3).clip(0.01)
        inter = inter.assign(weight=weight)
    elif variant == "one-interaction-users":
        users = inter["user_id"].unique()
        single = set(users[rng.random(users.size) < 0.5])
        order = inter.assign(_t=_timestamps(inter)).sort_values("_t", kind="stable")
        first = ~order.duplicated("user_id")
        keep = first | ~order["user_id"].isin(single)
        inter = inter.loc[keep.sort_index().to_numpy()]
    frames["interactions.csv"] = inter
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, frame in frames.items():
        if frame is None:
            (out / name).unlink(missing_ok=True)
            continue
        frame.to_csv(out / name, index=False)
        counts[name] = len(frame)
    for extra in sorted(set(p.name for p in source.iterdir()) - set(FILES)):
        if (source / extra).is_file():  # e.g. an attribution file travels with the data
            shutil.copy2(source / extra, out / extra)
    return counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a folder in the generic benchmark format")
    parser.add_argument("out", type=Path)
    parser.add_argument("--variant", required=True, choices=sorted(VARIANTS),
                        help="; ".join(f"{k}: {v}" for k, v in VARIANTS.items()))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = make(args.source, args.out, args.variant, args.seed)
    print(f"{args.out} ({args.variant}): " + ", ".join(f"{v:,} rows in {k}"
                                                       for k, v in counts.items()))


if __name__ == "__main__":
    main()
