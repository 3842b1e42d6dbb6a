"""The ``recommender`` command line: generate, import, datasets, train, benchmark, serve, demo.

The app lives in :mod:`recommender.cli.common`; each ``*_commands`` module adds its commands to
it when imported, so a new group of commands is a new module listed here.
"""

from recommender.cli import data_commands, model_commands, serve_commands  # noqa: F401
from recommender.cli.common import app
from recommender.settings import sleeping_openmp_threads

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry point
    sleeping_openmp_threads()  # before any command imports an OpenMP library
    app()
