"""What a resident's list pays for declared interests: one ``Store.profile`` read by key.

Every list for a resident (known to the model or not) reads their profile, commitments and
stored row in the thread pool. This times the profile read on SQLite and, when ``--postgres`` is
given, PostgreSQL (in a schema of its own, dropped at the end: nothing else in the database is
touched), with and without a stored profile, next to ``Store.commitments`` in the same run; then
the three reads a list needs made one after the other, against ``Store.resident_reads`` (the
same three in one statement, what the service makes), and prints a table. Each resident has
eight events on one course, four of them commitments.

Usage::

    .venv/bin/python benchmarks/bench_profile_read.py [--residents 20000] [--reads 3000]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/bench]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommender.data.store import open_store  # noqa: E402


def _fill(store, residents: int) -> list[str]:
    """``residents`` residents in one community; every other one has a profile."""
    ids = [f"R{i:07d}" for i in range(residents)]
    store.insert("communities", pd.DataFrame({"community_id": ["C01"], "name": ["文康社区"],
                                              "street": ["东港街道"], "kind": ["leading"]}))
    store.insert("residents", pd.DataFrame({
        "resident_id": ids, "birth_year": 1960, "gender": None, "community_id": "C01",
        "household_id": None, "registered_at": dt.date(2026, 1, 1)}))
    for rid in ids[::2]:
        store.upsert_profile(rid, interests=["handicraft", "skills"])
    store.insert("courses", pd.DataFrame({
        "course_id": ["K1"], "title": ["剪纸入门"], "description": [None],
        "category": ["interest"], "target_bands": ["elderly"], "tags": [None],
        "community_id": ["C01"], "fee_tier": ["inclusive"], "capacity": [20],
        "start_date": [dt.date(2026, 3, 1)], "end_date": [dt.date(2026, 6, 30)],
        "weekday": [2], "start_time": ["09:30"], "status": ["open"]}))
    kinds = ["view", "enroll", "view", "attend", "view", "attend", "view", "complete"]
    store.insert("participations", pd.DataFrame({
        "event_id": [f"E{i:07d}-{n}" for i in range(residents) for n in range(len(kinds))],
        "resident_id": np.repeat(ids, len(kinds)), "course_id": "K1",
        "event": kinds * residents, "value": None,
        "occurred_at": pd.Timestamp("2026-03-01") + pd.to_timedelta(
            np.tile(np.arange(len(kinds)), residents), unit="D")}))
    return ids


@contextmanager
def _own_schema(url: str):
    """A URL whose ``search_path`` is a new schema, dropped with everything in it afterwards."""
    schema = f"bench_profiles_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _measure(url: str, backend: str, args, rng) -> list[tuple]:
    store = open_store(url)
    ids = _fill(store, args.residents)
    with_profile = [ids[2 * i] for i in rng.integers(0, len(ids) // 2, args.reads)]
    without = [ids[2 * i + 1] for i in rng.integers(0, len(ids) // 2, args.reads)]
    rows = [(backend, what, *_time(read, sample))
            for what, read, sample in (("profile (stored)", store.profile, with_profile),
                                       ("profile (none)", store.profile, without),
                                       ("commitments", store.commitments, with_profile),
                                       ("the three, one by one", lambda rid: (
                                           store.commitments(rid), store.profile(rid),
                                           store.resident(rid)), with_profile),
                                       ("resident_reads", store.resident_reads, with_profile))]
    store.dispose()
    return rows


def _time(read, ids: list[str]) -> tuple[float, float]:
    ms = []
    for rid in ids:
        started = time.perf_counter()
        read(rid)
        ms.append(1000 * (time.perf_counter() - started))
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=20000)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--postgres", default=None,
                        help="a PostgreSQL database URL (a schema of its own is made in it)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += _measure(f"sqlite:///{tmp}/profiles.db", "sqlite", args, rng)
    if args.postgres:
        with _own_schema(args.postgres) as url:
            rows += _measure(url, "postgresql", args, rng)
    print(f"{'backend':<11} {'read':<22} {'p50 ms':>7} {'p99 ms':>7}")
    for backend, what, p50, p99 in rows:
        print(f"{backend:<11} {what:<22} {p50:7.3f} {p99:7.3f}")


if __name__ == "__main__":
    main()
