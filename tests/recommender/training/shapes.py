"""Small generic-format folders of every shape a real dataset comes in, seeded.

:func:`write_shape` writes ``interactions.csv`` (and ``users.csv`` / ``items.csv`` when the
shape has them) into a folder. The base dataset has users of every age band whose first
interaction is spread over half a year (so some join late: the cold users), items in six
categories with tags, and band-dependent tastes, so that every protocol has something to
evaluate; each shape changes one thing about it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01")
DAYS = 180
CATEGORIES = 6

# name -> what the shape changes (the base values are in _base)
SHAPES = {
    "coarse": "4 distinct quarterly timestamps; the 80th percentile lands on the last one",
    "two-times": "2 distinct timestamps: a time cut's training part has one, so no time cut "
                 "of it can validate",
    "epoch": "timestamps as seconds since the Unix epoch",
    "epoch-milliseconds": "timestamps as milliseconds since the Unix epoch, as many exports "
                          "write them",
    "single-time": "every interaction at the same timestamp",
    "no-users-file": "no users.csv",
    "no-ages": "users.csv without age or age_band",
    "no-items-file": "no items.csv",
    "bare-items": "items.csv with item_id and title only (no category, no tags)",
    "20-items": "a catalogue of 20 items",
    "3000-items": "a catalogue of 3,000 items, most with a handful of interactions",
    "one-interaction-users": "most users have a single interaction",
    "duplicates": "a fifth of the rows repeated exactly",
    "weights": "a weight column of arbitrary positive numbers (0.1 .. 50)",
}


def write_shape(folder: Path, shape: str, seed: int = 0, n_users: int = 160,
                n_items: int = 60) -> Path:
    """Write the folder of ``shape`` (a key of :data:`SHAPES`) and return it."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {sorted(SHAPES)}, got {shape!r}")
    rng = np.random.default_rng(seed)
    if shape == "20-items":
        n_items = 20
    if shape == "3000-items":
        n_items, n_users = 3000, 300
    inter, users, items = _base(rng, n_users, n_items, single=shape == "one-interaction-users")
    inter, users, items = _reshape(shape, rng, inter, users, items)
    folder.mkdir(parents=True, exist_ok=True)
    inter.to_csv(folder / "interactions.csv", index=False)
    if users is not None:
        users.to_csv(folder / "users.csv", index=False)
    if items is not None:
        items.to_csv(folder / "items.csv", index=False)
    return folder


def _base(rng: np.random.Generator, n_users: int, n_items: int, single: bool):
    """Interactions (timestamps as Timestamps), users and items of the base dataset."""
    ages = rng.integers(3, 90, n_users)
    band = np.digitize(ages, [6, 18, 60])  # 0..3, as the default band edges
    category = np.arange(n_items) % CATEGORIES
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)], "age": ages,
                          "gender": rng.choice(["F", "M"], n_users)})
    items = pd.DataFrame({
        "item_id": [f"i{i}" for i in range(n_items)],
        "title": [f"course {i}" for i in range(n_items)],
        "description": [f"a course about topic {i % 13}" for i in range(n_items)],
        "category": [f"c{c}" for c in category],
        "tags": [f"t{i % 5}|t{i % 7}" for i in range(n_items)],
    })
    # Popularity falls off with the item index; each band prefers two categories.
    popularity = 1.0 / (1.0 + np.arange(n_items)) ** 0.7
    rows = []
    for u in range(n_users):
        liked = np.isin(category, [band[u] % CATEGORIES, (band[u] + 3) % CATEGORIES])
        p = popularity * np.where(liked, 6.0, 1.0)
        n = 1 if single and rng.random() < 0.7 else int(rng.integers(2, 14))
        chosen = rng.choice(n_items, size=min(n, n_items), replace=False, p=p / p.sum())
        # Each user is active for up to 60 days from joining, so late joiners are cold users.
        joined = rng.uniform(0, DAYS - 5)
        for item in chosen:
            when = START + pd.Timedelta(days=float(joined + rng.uniform(0, min(60, DAYS - joined))))
            rows.append((f"u{u}", f"i{item}", when.floor("s")))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return inter, users, items


def _reshape(shape: str, rng: np.random.Generator, inter: pd.DataFrame, users, items):
    """The base frames changed the way ``shape`` says; timestamps become text or numbers."""
    ts = inter["timestamp"]
    if shape == "coarse":
        # Quarter starts; the last quarter holds a third of the rows, so the lower 80th
        # percentile is the last timestamp and a cut there leaves nothing after it.
        quarter = np.minimum((ts - START).dt.days.to_numpy() // 45, 3)
        quarter = np.where(rng.random(len(ts)) < 0.35, 3, quarter)
        dates = pd.to_datetime(["2023-10-01", "2024-01-01", "2024-04-01", "2024-07-01"])
        inter["timestamp"] = dates[quarter].strftime("%Y-%m-%d")
    elif shape == "two-times":
        late = (ts - START).dt.days.to_numpy() >= 120
        inter["timestamp"] = np.where(late, "2024-07-01", "2024-01-01")
    elif shape == "epoch":
        inter["timestamp"] = (ts - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    elif shape == "epoch-milliseconds":
        inter["timestamp"] = (ts - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
    elif shape == "single-time":
        inter["timestamp"] = "2024-05-01"
    else:
        inter["timestamp"] = ts.dt.strftime("%Y-%m-%dT%H:%M:%S")
    if shape == "no-users-file":
        users = None
    elif shape == "no-ages":
        users = users.drop(columns=["age"])
    elif shape == "no-items-file":
        items = None
    elif shape == "bare-items":
        items = items[["item_id", "title"]]
    elif shape == "duplicates":
        inter = pd.concat([inter, inter.sample(frac=0.2, random_state=1)], ignore_index=True)
    elif shape == "weights":
        inter["weight"] = np.round(rng.uniform(0.1, 50.0, len(inter)), 2)
    return inter, users, items
