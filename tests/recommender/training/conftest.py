"""Fixtures shared by the training tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from recommender.demo.generator import generate_district


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One OpenMP/BLAS thread in every training test module: on a shared 2-core machine
    spinning threads make the many small fits crawl."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def district(tmp_path_factory) -> Path:
    """A small generated district (400 residents, 40 courses, as of 2025-06-01), read only:
    the benchmark and evaluation-report tests share it; modules that need another district
    define their own ``district``."""
    folder = tmp_path_factory.mktemp("district")
    generate_district(folder, residents=400, courses=40, seed=5, as_of=dt.date(2025, 6, 1))
    return folder
