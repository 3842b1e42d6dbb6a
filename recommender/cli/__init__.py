"""The ``recommender`` command line: generate, import, datasets, train, benchmark, serve, demo.

The app lives in :mod:`recommender.cli.common`; each ``*_commands`` module adds its commands to
it when imported, so a new group of commands is a new module listed here.
"""

import os

from recommender.cli import data_commands, model_commands, serve_commands  # noqa: F401
from recommender.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry point
    # Idle OpenMP threads (the re-ranker's trees, implicit) sleep instead of spinning: on a
    # machine shared with other work a spinning thread waits for a descheduled sibling, and a
    # tree fit took five times longer than on one thread (docs/decisions.md). It must be set
    # before an OpenMP runtime loads, which the commands' lazy imports leave until here.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()
