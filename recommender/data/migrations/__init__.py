"""The store's schema migrations (Alembic), run by ``Store.create_schema``.

The scripts live in this package (``versions/``), so a user needs no ``alembic.ini``: the
configuration is built here, in code, and the migrations run on the store's own engine.

* ``0001`` is the baseline: the four district tables as the store created them before
  migrations existed. A database holding those tables but no ``alembic_version`` (made by that
  earlier code) is *stamped* at the baseline, not re-created, then upgraded in place.
* ``0002`` adds the coordinators' ``decisions``.

A new migration is a new file in ``versions/`` (the next number as its revision, the previous
one as ``down_revision``; ``script.py.mako`` is the template); keep
:func:`recommender.data.store.schema.build_metadata` in step with it (a test compares the two).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

FOLDER = Path(__file__).resolve().parent
BASELINE = "0001"
# Tables of the baseline: their presence without a version table means "created before
# migrations" (the check uses the first one every store had).
BASELINE_TABLES = ("communities", "residents", "courses", "participations")
# Any constant: PostgreSQL serialises concurrent upgrades (several workers starting at once)
# on this advisory lock, held until the upgrade's transaction ends.
_PG_LOCK = 7_351_002


def config(connection: sa.Connection) -> Config:
    """An Alembic configuration for this package, bound to ``connection`` (no ini file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(FOLDER))
    cfg.attributes["connection"] = connection
    return cfg


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``: stamp a pre-migration store, then upgrade.

    Safe to call repeatedly (at head it changes nothing) and from several processes at once on
    PostgreSQL (an advisory lock serialises them) and on an SQLite file (a lock on a file
    beside it does: SQLite's DDL does not run in one transaction here).
    """
    with _sqlite_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        cfg = config(conn)
        versioned = MigrationContext.configure(conn).get_current_revision() is not None
        if not versioned and sa.inspect(conn).has_table(BASELINE_TABLES[0]):
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, revision)


@contextmanager
def _sqlite_file_lock(engine: sa.Engine) -> Iterator[None]:
    """Hold an exclusive lock on ``<database>.migrate-lock`` while an SQLite file migrates."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    import fcntl  # POSIX only, like the rest of the deployment

    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Take the database back to ``revision`` (``"base"``: no table left)."""
    with engine.begin() as conn:
        command.downgrade(config(conn), revision)


__all__ = ["BASELINE", "current_revision", "downgrade", "upgrade"]
