"""Shared fixtures: the store backends every store test runs against.

PostgreSQL is a real server (``RECOMMENDER_TEST_POSTGRES_URL``, by default the local one this
machine kind starts). Each test gets its own PostgreSQL schema, so concurrent runs never share
tables. An unreachable server fails the test with the reason: it never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from recommender.data.store import open_store

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "RECOMMENDER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def postgres_schema(prefix: str = "t_") -> Iterator[str]:
    """A fresh PostgreSQL schema (``prefix`` + random hex) while the block runs, then dropped.

    Yields the URL whose ``search_path`` is that schema; an unreachable server fails the test.
    """
    schema = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment failure
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """A database URL on a fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def store(store_url):
    """An empty store with the schema created, on each backend."""
    s = open_store(store_url)
    yield s
    s.dispose()
