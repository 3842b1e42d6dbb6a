"""The two backends (SQLite embedded, PostgreSQL for production), and opening the one a URL
names (:func:`open_store`).

Reads and small writes go through SQLAlchemy (:class:`recommender.data.store.base.Store`);
bulk inserts take each backend's fast path (``executemany`` with ``INSERT OR IGNORE`` on
SQLite, ``COPY`` into a temporary table on PostgreSQL) because inserting 10M events row by row
through an ORM layer takes far too long. Both paths ignore rows whose key already exists, which
is what makes re-imports and re-sent events idempotent.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from recommender.data.store.base import EventFeed, Store
from recommender.data.store.feeds import _channel, _NotifyFeed, _payloads, _RowidFeed
from recommender.data.store.queries import column_values
from recommender.domain import TableSpec
from recommender.settings import DEFAULT_DATABASE_URL, check_database_url


class SQLiteStore(Store):
    """The embedded default: one SQLite file (its folder is created on first use)."""

    backend = "sqlite"
    quick_reads = True
    # An SQLite connection is an open file: keep one for every thread that may read at once,
    # the API's thread pool (anyio's 40: the plain ``def`` handlers; the ranking routes read
    # inline, see quick_reads) and the background threads (impression writer,
    # follower, a model load), so concurrent requests never open and close overflow
    # connections, each with the pragmas below (they showed in the profile at 32 clients).
    POOL = {"pool_size": 48, "max_overflow": 16}

    def _make_engine(self) -> sa.Engine:
        database = sa.engine.make_url(self.url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        in_memory = not database or database == ":memory:"
        engine = sa.create_engine(self.url, **({} if in_memory else self.POOL))

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # enforce foreign keys; WAL lets readers run on
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine

    def _insert_ignore(self, spec: TableSpec, frame: pd.DataFrame, announce: bool) -> int:
        columns = [column_values(frame, c.name, c.kind, iso=True) for c in spec.columns]
        cols = ", ".join(spec.column_names)
        marks = ", ".join("?" * len(spec.columns))
        sql = f"INSERT OR IGNORE INTO {spec.name} ({cols}) VALUES ({marks})"
        with self.engine.begin() as conn:
            raw = conn.connection.driver_connection
            before = raw.total_changes
            raw.executemany(sql, zip(*columns))
            return raw.total_changes - before

    def follow(self) -> EventFeed:
        return _RowidFeed(self)


class PostgresStore(Store):
    """The production backend: COPY into a temporary table, then insert what is new."""

    backend = "postgresql"

    def _make_engine(self) -> sa.Engine:
        url = sa.engine.make_url(self.url)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return sa.create_engine(url, pool_pre_ping=True, **self.POOL)

    def _insert_ignore(self, spec: TableSpec, frame: pd.DataFrame, announce: bool) -> int:
        cols = ", ".join(spec.column_names)
        tmp = f"_incoming_{spec.name}"
        with self.engine.begin() as conn:
            cur = conn.connection.driver_connection.cursor()
            cur.execute(
                f"CREATE TEMP TABLE {tmp} (LIKE {spec.name} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            with cur.copy(f"COPY {tmp} ({cols}) FROM STDIN") as copy:
                copy.write(_copy_text(spec, frame))
            # ON CONFLICT DO NOTHING also skips a key repeated within the batch, so the row
            # count is exactly the number of new keys.
            insert = (f"INSERT INTO {spec.name} ({cols}) SELECT {cols} FROM {tmp} "
                      f"ON CONFLICT ({spec.key}) DO NOTHING")
            if not announce:
                cur.execute(insert)
                return cur.rowcount
            cur.execute(f"{insert} RETURNING {spec.key}")
            new = [key for (key,) in cur.fetchall()]
            # Delivered to every listener when (and only if) this transaction commits.
            channel = _channel(cur)
            for payload in _payloads(new):
                cur.execute("SELECT pg_notify(%s, %s)", (channel, payload))
            return len(new)

    def follow(self) -> EventFeed:
        return _NotifyFeed(self)


def _copy_text(spec: TableSpec, frame: pd.DataFrame) -> str:
    """The frame in PostgreSQL's COPY text format, built column-wise (no per-row Python)."""
    parts = []
    for col in spec.columns:
        text = pd.Series(column_values(frame, col.name, col.kind, iso=True), dtype="string")
        if col.kind not in ("int", "float", "date", "datetime"):
            # COPY text format: backslash, tab, newline and carriage return are escaped
            for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"),
                                 ("\r", "\\r")):
                text = text.str.replace(raw, escaped, regex=False)
        parts.append(text.fillna("\\N"))
    lines = parts[0].str.cat(parts[1:], sep="\t") if len(parts) > 1 else parts[0]
    return lines.str.cat(sep="\n") + "\n"


def open_store(url: str | None = None, create: bool = True) -> Store:
    """The store for ``url`` (default :data:`DEFAULT_DATABASE_URL`), its schema created.

    Raises
    ------
    ValueError
        If the URL is not one the store can use (see
        :func:`recommender.settings.check_database_url`).
    StoreError
        If the database does not answer (:func:`unavailable_line` says why in one line).
    """
    url = check_database_url(url or DEFAULT_DATABASE_URL)
    backend = sa.engine.make_url(url).get_backend_name()
    store = {"sqlite": SQLiteStore, "postgresql": PostgresStore}[backend](url)
    if create:
        store.create_schema()
    return store


def unavailable_line(url: str, exc: Exception) -> str:
    """Why the database at ``url`` did not answer, in one line: the URL without its password
    and the driver's first line (e.g. ``connection refused``), without SQLAlchemy's statement
    and background link."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    return f"database {shown} is unavailable: {lines[0] if lines else type(cause).__name__}"
