"""Each variant of ``benchmarks/dataset_variant.py`` changes the one thing it names, and the
engine's own loader reads the result."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.data.generic import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("dataset_variant",
                                              ROOT / "benchmarks" / "dataset_variant.py")
variant = importlib.util.module_from_spec(spec)
spec.loader.exec_module(variant)

N_USERS, N_ITEMS = 40, 15


@pytest.fixture
def source(tmp_path) -> Path:
    rng = np.random.default_rng(3)
    rows = [(f"u{u}", f"i{i}", int(880_000_000 + rng.integers(0, 200 * 86_400)))
            for u in range(N_USERS) for i in rng.choice(N_ITEMS, 5, replace=False)]
    folder = tmp_path / "source"
    folder.mkdir()
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(
        folder / "interactions.csv", index=False)
    pd.DataFrame({"user_id": [f"u{u}" for u in range(N_USERS)],
                  "age": rng.integers(5, 80, N_USERS)}).to_csv(folder / "users.csv", index=False)
    pd.DataFrame({"item_id": [f"i{i}" for i in range(N_ITEMS)],
                  "title": [f"film {i}" for i in range(N_ITEMS)],
                  "category": [f"g{i % 3}" for i in range(N_ITEMS)],
                  "tags": [f"g{i % 3}|t{i % 4}" for i in range(N_ITEMS)]}).to_csv(
        folder / "items.csv", index=False)
    (folder / "ATTRIBUTION.txt").write_text("source: a test\n")
    return folder


def _make(source: Path, tmp_path: Path, name: str):
    out = tmp_path / name
    variant.make(source, out, name, seed=0)
    return out, load_benchmark(out), load_benchmark(source)


@pytest.mark.parametrize("name", sorted(variant.VARIANTS))
def test_every_variant_loads_and_keeps_the_attribution(source, tmp_path, name):
    out, bundle, _ = _make(source, tmp_path, name)
    assert len(bundle.interactions) > 0
    assert (out / "ATTRIBUTION.txt").read_text() == "source: a test\n"


def test_files_left_out_or_thinned(source, tmp_path):
    out, bundle, _ = _make(source, tmp_path, "no-users")
    assert not (out / "users.csv").exists() and (out / "items.csv").exists()
    assert list(bundle.users.columns) == ["user_id"]  # no age, so no band
    out, _, _ = _make(source, tmp_path, "no-items")
    assert not (out / "items.csv").exists() and (out / "users.csv").exists()
    out, _, _ = _make(source, tmp_path, "bare-items")
    assert list(pd.read_csv(out / "items.csv").columns) == ["item_id", "title"]


def test_monthly_timestamps_are_the_first_day_of_the_same_month(source, tmp_path):
    out, bundle, _ = _make(source, tmp_path, "monthly")
    got = bundle.interactions["timestamp"]
    assert (got.dt.day == 1).all() and (got.dt.hour == 0).all()
    written = pd.read_csv(out / "interactions.csv")["timestamp"]
    seconds = pd.read_csv(source / "interactions.csv")["timestamp"]
    # The source's epoch seconds count from UTC; each is written as its UTC month's first day.
    months = pd.to_datetime(seconds, unit="s").dt.to_period("M").dt.start_time
    assert (pd.to_datetime(written) == months).all()
    assert got.nunique() < seconds.nunique()


def test_duplicates_repeat_a_fifth_of_the_rows_exactly(source, tmp_path):
    out, _, _ = _make(source, tmp_path, "duplicates")
    rows = pd.read_csv(out / "interactions.csv")
    original = pd.read_csv(source / "interactions.csv")
    assert len(rows) == len(original) + round(0.2 * len(original))
    assert rows.drop_duplicates().reset_index(drop=True).equals(original)
    assert rows.duplicated().sum() == len(rows) - len(original)


def test_weights_are_positive_numbers(source, tmp_path):
    _, bundle, _ = _make(source, tmp_path, "weights")
    weights = bundle.interactions["weight"]
    assert (weights > 0).all() and weights.nunique() > 10


def test_one_interaction_users_keep_their_first(source, tmp_path):
    _, bundle, original = _make(source, tmp_path, "one-interaction-users")
    sizes = bundle.interactions.groupby("user_id").size()
    single = sizes.index[sizes == 1]
    assert 0.25 * N_USERS < len(single) < 0.75 * N_USERS
    assert (sizes[sizes > 1] == 5).all()  # the others keep everything
    before = original.interactions.sort_values("timestamp", kind="stable")
    first = before.drop_duplicates("user_id").set_index("user_id")["item_id"]
    kept = bundle.interactions.set_index("user_id")["item_id"]
    assert (kept[single] == first[single]).all()


def test_an_unknown_variant_is_refused(source, tmp_path):
    with pytest.raises(ValueError, match="variant must be one of"):
        variant.make(source, tmp_path / "x", "sideways")
