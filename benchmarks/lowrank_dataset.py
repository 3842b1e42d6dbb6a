"""A MovieLens-100k-shaped dataset in the generic benchmark format, from a low-rank taste model.

The demo district's generator and the hybrid were written by the same hands, so figures on it
prove little alone. This dataset has nothing the hybrid's district signals could exploit: no
course dates, no communities, a taste model of latent factors (plus an age axis and a popularity
skew), timestamps that carry no item trends. It is the shape on which EASE-like models are
strong: 943 users, 1,682 items, ~75k interactions, users' ages and a genre per item.

Usage::

    .venv/bin/python benchmarks/lowrank_dataset.py OUT [--seed S] [--coarse]

``--coarse`` rounds the timestamps down to the start of their quarter (a few dozen distinct
values with heavy ties, as term-level enrolment records are).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

USERS, ITEMS, FACTORS = 943, 1682, 12


def make(out: Path, seed: int = 0, coarse: bool = False) -> int:
    """Write ``interactions.csv``, ``users.csv`` and ``items.csv`` to ``out``; return the number
    of interactions."""
    rng = np.random.default_rng(seed)
    popularity = rng.zipf(1.6, ITEMS).clip(1, 400).astype(float)
    user_f = rng.normal(size=(USERS, FACTORS))
    item_f = rng.normal(size=(ITEMS, FACTORS))
    ages = rng.integers(7, 73, USERS)
    user_f[:, 0] += (ages - 40) / 15.0  # age drives one taste axis
    sizes = rng.lognormal(4.0, 0.9, USERS).clip(20, 700).astype(int)
    rows = []
    for u in range(USERS):
        logits = user_f[u] @ item_f.T / 1.5 + np.log(popularity)
        p = np.exp(logits - logits.max())
        k = min(sizes[u], ITEMS // 2)
        items = rng.choice(ITEMS, size=k, replace=False, p=p / p.sum())
        start = rng.uniform(8.74e8, 8.93e8)
        times = np.sort(start + rng.exponential(3e5, k).cumsum())
        rows += [(f"u{u}", f"i{i}", int(t)) for i, t in zip(items, times)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    stamps = pd.to_datetime(inter["timestamp"], unit="s")
    inter["timestamp"] = (stamps.dt.to_period("Q").dt.start_time.dt.strftime("%Y-%m-%d")
                          if coarse else stamps.dt.strftime("%Y-%m-%dT%H:%M:%S"))
    out.mkdir(parents=True, exist_ok=True)
    inter.to_csv(out / "interactions.csv", index=False)
    pd.DataFrame({"user_id": [f"u{u}" for u in range(USERS)], "age": ages,
                  "gender": rng.choice(["M", "F"], USERS)}).to_csv(out / "users.csv", index=False)
    genre = np.argmax(item_f[:, 1:5], axis=1)
    pd.DataFrame({"item_id": [f"i{i}" for i in range(ITEMS)],
                  "title": [f"item {i}" for i in range(ITEMS)],
                  "category": [f"g{g}" for g in genre]}).to_csv(out / "items.csv", index=False)
    return len(inter)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--coarse", action="store_true", help="quarterly timestamps")
    args = parser.parse_args(argv)
    n = make(args.out, args.seed, args.coarse)
    print(f"{n} interactions written to {args.out}")


if __name__ == "__main__":
    main()
