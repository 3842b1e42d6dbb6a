"""Fixtures shared by the training tests."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One OpenMP/BLAS thread in every training test module: on a shared 2-core machine
    spinning threads make the many small fits crawl."""
    with threadpool_limits(1):
        yield
