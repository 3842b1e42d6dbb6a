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

``--shape mooc`` draws the other shape real enrolment data comes in: 200,000 learners, 240
courses, a few enrolments each (1 to 30, median 2), quarterly timestamps, and a declared
``age_band`` instead of an age, unknown for 15 % of the learners::

    .venv/bin/python benchmarks/lowrank_dataset.py OUT --shape mooc

``--shape catalogue`` draws a large catalogue: 30,000 users and 40,000 items, nearly all of
them used (more than EASE solves over, see models/ease.py), about 580k interactions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

FACTORS = 12
# users, items, the log-normal (mean, sigma) of enrolments per user and their clip, and
# whether users declare a band (some unknown) instead of giving an age.
SHAPES = {
    "movielens": {"users": 943, "items": 1682, "sizes": (4.0, 0.9, 20, 700), "bands": False},
    "mooc": {"users": 200_000, "items": 240, "sizes": (0.8, 0.8, 1, 30), "bands": True},
    "catalogue": {"users": 30_000, "items": 40_000, "sizes": (2.5, 1.0, 1, 300),
                  "bands": False},
}
UNKNOWN_BAND_SHARE = 0.15
BAND_EDGES = ((6, "preschool"), (18, "school_age"), (60, "working_age"))


def make(out: Path, seed: int = 0, coarse: bool = False, shape: str = "movielens") -> int:
    """Write ``interactions.csv``, ``users.csv`` and ``items.csv`` to ``out``; return the number
    of interactions."""
    spec = SHAPES[shape]
    n_users, n_items = spec["users"], spec["items"]
    rng = np.random.default_rng(seed)
    popularity = rng.zipf(1.6, n_items).clip(1, 400).astype(float)
    user_f = rng.normal(size=(n_users, FACTORS))
    item_f = rng.normal(size=(n_items, FACTORS))
    ages = rng.integers(7, 73, n_users)
    user_f[:, 0] += (ages - 40) / 15.0  # age drives one taste axis
    mean, sigma, low, high = spec["sizes"]
    sizes = rng.lognormal(mean, sigma, n_users).clip(low, high).astype(int)
    users, items, times = [], [], []
    for u in range(n_users):
        logits = user_f[u] @ item_f.T / 1.5 + np.log(popularity)
        p = np.exp(logits - logits.max())
        k = min(sizes[u], n_items // 2)
        users.append(np.full(k, u))
        items.append(rng.choice(n_items, size=k, replace=False, p=p / p.sum()))
        start = rng.uniform(8.74e8, 8.93e8)
        times.append(np.sort(start + rng.exponential(3e5, k).cumsum()))
    inter = pd.DataFrame({"user_id": np.char.add("u", np.concatenate(users).astype(str)),
                          "item_id": np.char.add("i", np.concatenate(items).astype(str)),
                          "timestamp": np.concatenate(times).astype(np.int64)})
    stamps = pd.to_datetime(inter["timestamp"], unit="s")
    inter["timestamp"] = (stamps.dt.to_period("Q").dt.start_time.dt.strftime("%Y-%m-%d")
                          if coarse else stamps.dt.strftime("%Y-%m-%dT%H:%M:%S"))
    out.mkdir(parents=True, exist_ok=True)
    inter.to_csv(out / "interactions.csv", index=False)
    table = {"user_id": [f"u{u}" for u in range(n_users)]}
    if spec["bands"]:
        band = np.full(n_users, "elderly", dtype=object)
        for edge, name in reversed(BAND_EDGES):
            band[ages < edge] = name
        band[rng.random(n_users) < UNKNOWN_BAND_SHARE] = None
        table["age_band"] = band
    else:
        table["age"] = ages
    table["gender"] = rng.choice(["M", "F"], n_users)
    pd.DataFrame(table).to_csv(out / "users.csv", index=False)
    genre = np.argmax(item_f[:, 1:5], axis=1)
    pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                  "title": [f"item {i}" for i in range(n_items)],
                  "category": [f"g{g}" for g in genre]}).to_csv(out / "items.csv", index=False)
    return len(inter)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--coarse", action="store_true", help="quarterly timestamps")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="movielens",
                        help="movielens (default), mooc (always quarterly) or catalogue")
    args = parser.parse_args(argv)
    n = make(args.out, args.seed, args.coarse or args.shape == "mooc", args.shape)
    print(f"{n} interactions written to {args.out}")


if __name__ == "__main__":
    main()
