"""The store's base class, what both SQL backends share, and the interface of its event feeds.

:class:`Store` creates the schema, writes (small writes through SQLAlchemy, bulk inserts
through each backend's ``_insert_ignore``, see :mod:`recommender.data.store.backends`) and
reads. Two groups of its methods live beside the statements they run: the serving layer's
questions in :mod:`recommender.data.store.queries`, the coordinators' records (decisions,
experiments, impressions) in :mod:`recommender.data.store.coordinators`. :class:`EventFeed` is
what :meth:`Store.follow` returns; each backend's feed is in :mod:`recommender.data.store.feeds`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from recommender.data import migrations
from recommender.data.profiles import check_profile, encode_interests
from recommender.data.store.coordinators import CoordinatorRecords
from recommender.data.store.queries import (
    _STATEMENTS,
    ServingReads,
    _DriverQuery,
    _typed,
    _utc_now,
)
from recommender.data.store.schema import BULK_DEFERRED, METADATA, _deferred_indexes
from recommender.domain import TABLE_ORDER, TABLES, TableSpec
from recommender.settings import DEFAULT_DATABASE_URL

# What a caller catches when the database is down or refuses a statement (the backend's
# exception hierarchy, named here so no caller imports SQLAlchemy for it).
StoreError = sa.exc.SQLAlchemyError


@dataclass(frozen=True)
class InsertResult:
    """What one bulk insert did: rows stored, and rows whose key was already there."""

    inserted: int
    duplicates: int


class Store(ServingReads, CoordinatorRecords):
    """A district store on one SQL database.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL; default :data:`DEFAULT_DATABASE_URL` (an SQLite file under ``var/``).
        Use :func:`open_store` to get the right backend for a URL.
    """

    backend = "generic"
    # Whether a read is a local file read (no wait on a server): callers on an event loop then
    # make per-request reads inline instead of handing them to a thread (api.routes.platform).
    quick_reads = False
    # Connections kept open for concurrent readers: the service reads the store from the thread
    # pool, several requests at a time. SQLAlchemy's default (5) closes every connection above
    # it on return, so each request beyond five paid a new connection (and, on SQLite, its
    # pragmas). A PostgreSQL connection is a server process: 16 per worker keeps several
    # workers under the server's default of 100 connections.
    POOL = {"pool_size": 16, "max_overflow": 16}

    def __init__(self, url: str | None = None) -> None:
        self.url = url or DEFAULT_DATABASE_URL
        self.engine = self._make_engine()
        self.tables = METADATA.tables
        self._resident_reads = _DriverQuery(_STATEMENTS["resident_reads"])

    def _make_engine(self) -> sa.Engine:
        return sa.create_engine(self.url)

    # -- schema -------------------------------------------------------------------------
    def create_schema(self) -> None:
        """Bring the schema to the newest migration (safe to call repeatedly).

        A fresh database gets every table; one made before migrations existed (the four district
        tables, no ``alembic_version``) is stamped at the baseline and upgraded in place, its
        rows kept. See :mod:`recommender.data.migrations`.
        """
        migrations.upgrade(self.engine)
        self._restore_indexes()

    def _restore_indexes(self) -> None:
        """Build the indexes a bulk load (:meth:`bulk_load`) dropped and did not get to build
        again, because it was killed."""
        inspector = sa.inspect(self.engine)
        for table in BULK_DEFERRED:
            present = {index["name"] for index in inspector.get_indexes(table)}
            for index in _deferred_indexes(table):
                if index.name not in present:
                    index.create(self.engine, checkfirst=True)

    @contextmanager
    def bulk_load(self, table: str, announce: Callable[[str], None] | None = None
                  ) -> Iterator[None]:
        """Around the inserts of a large load into ``table``: when the table is empty, its
        wide indexes (:data:`BULK_DEFERRED`) are dropped for the load and built once after it
        (told to ``announce``). Keeping the resident-history index up row by row made the 400k
        district's import 49 % slower; building it after the load takes ~11 s. Whatever stops
        the load, the indexes are built again, here or by the next :meth:`create_schema`.
        """
        deferred = _deferred_indexes(table)
        if not deferred or self.count(table) > 0:
            yield
            return
        for index in deferred:
            index.drop(self.engine, checkfirst=True)
        try:
            yield
        finally:
            for index in deferred:
                if announce is not None:
                    announce(f"{table}: building the index {index.name}")
                index.create(self.engine, checkfirst=True)

    def schema_revision(self) -> str | None:
        """The migration the database is at (None: no schema made by migrations)."""
        return migrations.current_revision(self.engine)

    def drop_schema(self) -> None:
        """Drop every table of the engine and the migration record (tests and ``--reset``)."""
        METADATA.drop_all(self.engine)
        with self.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))

    # -- writes -------------------------------------------------------------------------
    def insert(self, table: str, frame: pd.DataFrame, announce: bool = False) -> InsertResult:
        """Insert rows, keeping the first row for every key and ignoring keys already stored.

        ``frame`` must hold valid rows (see :mod:`recommender.data.ingest` for validation); columns
        missing from it are stored as NULL. ``announce`` (participations only) tells every
        :meth:`follow` feed about the new rows in the same transaction; on SQLite the feeds see
        every committed row anyway, so it changes nothing there.
        """
        spec = TABLES[table]
        if frame.empty:
            return InsertResult(0, 0)
        inserted = self._insert_ignore(spec, frame, announce and table == "participations")
        return InsertResult(inserted, len(frame) - inserted)

    def _insert_ignore(self, spec: TableSpec, frame: pd.DataFrame, announce: bool) -> int:
        """Insert the rows skipping existing keys; return how many were stored (per backend)."""
        raise NotImplementedError

    def upsert_resident(self, row: dict, profile: dict | None = None) -> bool:
        """Store a resident: a new one is inserted, a stored one updated; True when created.

        ``row`` holds a valid ``residents`` row (every column; see
        :mod:`recommender.data.validation`). An update keeps the stored ``registered_at``: the
        day a resident registered does not move when their profile changes. Insert-or-nothing
        and then update, in one transaction, so two requests creating the same resident at
        once both succeed and exactly one of them reports the creation. ``profile`` (keywords
        of :meth:`upsert_profile`) replaces their declared profile in the same transaction.
        """
        spec, table = TABLES["residents"], self.tables["residents"]
        values = {c.name: row.get(c.name) for c in spec.columns}
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        insert = dialect.insert(table).values(**values).on_conflict_do_nothing(
            index_elements=[spec.key]).returning(table.c[spec.key])
        changes = {k: v for k, v in values.items() if k not in (spec.key, "registered_at")}
        with self.engine.begin() as conn:
            created = conn.execute(insert).first() is not None  # a row only if inserted
            if not created:
                conn.execute(sa.update(table).where(table.c[spec.key] == values[spec.key])
                             .values(**changes))
            if profile is not None:
                self._write_profile(conn, values[spec.key], **profile)
        return created

    def upsert_profile(self, resident_id: str, *, age_band: str | None = None,
                       interests: Iterable[str] = (), at: dt.datetime | None = None) -> None:
        """Replace a stored resident's declared profile (see :mod:`recommender.data.profiles`).

        Raises
        ------
        ProfileError
            Naming the field when the band or an interest is not one of its choices (a
            ``ValueError``).
        StoreError
            When the resident is not stored (the foreign key).
        """
        with self.engine.begin() as conn:
            self._write_profile(conn, resident_id, age_band=age_band, interests=interests,
                                at=at)

    def _write_profile(self, conn: sa.Connection, resident_id: str, *,
                       age_band: str | None = None, interests: Iterable[str] = (),
                       at: dt.datetime | None = None) -> None:
        listed = interests if isinstance(interests, str) else list(interests)  # str: refused
        checked = check_profile(age_band, listed)
        table = self.tables["resident_profiles"]
        values = {"age_band": checked.age_band,
                  "interests": encode_interests(checked.interests),
                  "updated_at": at or _utc_now()}
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        conn.execute(dialect.insert(table).values(resident_id=resident_id, **values)
                     .on_conflict_do_update(index_elements=["resident_id"], set_=values))

    # -- reads --------------------------------------------------------------------------
    def read(self, table: str, where: sa.ColumnElement | None = None) -> pd.DataFrame:
        """A whole table (or the rows matching ``where``) as a DataFrame with typed columns."""
        spec = TABLES[table]
        stmt = sa.select(self.tables[table])
        if where is not None:
            stmt = stmt.where(where)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(stmt).fetchall(), columns=spec.column_names)
        return _typed(spec, frame)

    def read_all(self) -> dict[str, pd.DataFrame]:
        """Every district table by name (the form ``recommender.data.datasets`` reads)."""
        return {name: self.read(name) for name in TABLE_ORDER}

    def keys(self, table: str) -> set[str]:
        """Every key stored in ``table``."""
        t = self.tables[table]
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(t.c[TABLES[table].key])).scalars())

    def existing_keys(self, table: str, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` already stored in ``table``."""
        t = self.tables[table]
        col = t.c[TABLES[table].key]
        keys = list(dict.fromkeys(keys))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 5000):
                chunk = keys[start : start + 5000]
                found.update(conn.execute(sa.select(col).where(col.in_(chunk))).scalars())
        return found

    def count(self, table: str) -> int:
        """Number of rows in ``table``."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(self.tables[table])).scalar()

    def counts(self) -> dict[str, int]:
        """Number of rows in every district table, keyed by table name."""
        return {name: self.count(name) for name in TABLE_ORDER}

    def events(self, event_ids: Iterable[str]) -> pd.DataFrame:
        """The stored participation rows of ``event_ids`` (unknown ids are left out), typed
        like :meth:`read`, in ``event_id`` order."""
        t = self.tables["participations"]
        ids = list(dict.fromkeys(event_ids))
        frames = [self.read("participations", t.c.event_id.in_(ids[start:start + 5000]))
                  for start in range(0, len(ids), 5000)]
        if not frames:
            return self.read("participations", sa.false())
        return pd.concat(frames, ignore_index=True).sort_values("event_id", ignore_index=True)

    def follow(self) -> EventFeed:
        """A feed of the participation events committed from now on, by any process.

        Each :meth:`EventFeed.poll` returns the events committed since the previous one; every
        event of :meth:`insert` reaches every open feed once (see the backends for how). The
        serving workers keep their seats and histories current through it.
        """
        raise NotImplementedError

    def ping(self) -> None:
        """Run a trivial query; raises :data:`StoreError` when the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(_STATEMENTS["ping"]).scalar()

    def dispose(self) -> None:
        """Close every pooled connection (the store can still be used; it reconnects)."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.engine.url.render_as_string(hide_password=True)!r})"


class EventFeed:
    """Participation events committed since the feed was opened, handed out once each.

    Made by :meth:`Store.follow`; :meth:`poll` returns the next events (typed like
    :meth:`Store.read`), at most ``limit`` at a time, and an empty frame when there are none.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def poll(self, limit: int = 10_000) -> pd.DataFrame:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the feed holds (it cannot be polled afterwards)."""
