"""The store: one interface over two SQL backends (SQLite embedded, PostgreSQL for production).

The schema is built once from :data:`recommender.domain.TABLES` with SQLAlchemy Core. Reads and
small writes go through SQLAlchemy; bulk inserts take each backend's fast path (``executemany``
with ``INSERT OR IGNORE`` on SQLite, ``COPY`` into a temporary table on PostgreSQL) because
inserting 10M events row by row through an ORM layer takes far too long. Both paths ignore rows
whose key already exists, which is what makes re-imports and re-sent events idempotent.

Every SQL statement of the code base lives here: the serving layer asks the store named questions
(:meth:`Store.commitments`, :meth:`Store.resident`, :meth:`Store.resident_reads`,
:meth:`Store.seats_taken`, :meth:`Store.decisions`, :meth:`Store.ping`, :meth:`Store.follow`)
and never builds a statement itself.

The schema arrives through Alembic migrations kept in :mod:`recommender.data.migrations`
(:meth:`Store.create_schema` runs them; a store created before migrations is stamped at the
baseline and upgraded in place). :func:`build_metadata` describes the same tables for queries
and is checked against the migrations by the tests. The URL comes from the caller
(:class:`recommender.settings.Settings` for the command line and the API).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from recommender.data import migrations
from recommender.data.profiles import check_profile, decode_interests, encode_interests
from recommender.domain import BAND_NAMES, TABLE_ORDER, TABLES, TableSpec
from recommender.settings import DEFAULT_DATABASE_URL, check_database_url

# Events that commit a resident to a course: enrolled (until cancelled), attended, completed.
COMMIT_EVENTS = ("enroll", "attend", "complete", "cancel")
# A resident holds a seat of a course while their latest commitment to it is one of these: a
# cancellation gives it back, a completion ends the course for them.
SEAT_EVENTS = ("enroll", "attend")
# What a coordinator may decide about a course for a cohort; ``ALL`` is the cohort wildcard
# (every community, or every band).
DECISION_ACTIONS = ("approve", "reject", "pin")
ALL = "all"
# What a caller catches when the database is down or refuses a statement (the backend's
# exception hierarchy, named here so no caller imports SQLAlchemy for it).
StoreError = sa.exc.SQLAlchemyError
# Who an impression's list was for: a resident, a household, or a profile (nobody registered).
IMPRESSION_KINDS = ("resident", "household", "profile")
IMPRESSION_COLUMNS = ("request_id", "kind", "resident_id", "household_id", "band",
                      "experiment_id", "variant", "model_version", "courses", "served_at")


class ExperimentConflict(RuntimeError):
    """An experiment was started while another one runs (only one runs at a time)."""

_SQL_TYPES = {
    "id": lambda: sa.String(64),
    "text": lambda: sa.Text(),
    "enum": lambda: sa.String(32),
    "bands": lambda: sa.String(128),
    "int": lambda: sa.Integer(),
    "float": lambda: sa.Float(),
    "date": lambda: sa.Date(),
    "datetime": lambda: sa.DateTime(),
}


def build_metadata() -> sa.MetaData:
    """SQLAlchemy tables for every district table, plus the coordinators' decisions."""
    metadata = sa.MetaData()
    for name in TABLE_ORDER:
        spec = TABLES[name]
        columns = []
        for col in spec.columns:
            args = [col.name, _SQL_TYPES[col.kind]()]
            if col.references:
                args.append(sa.ForeignKey(f"{col.references}.{TABLES[col.references].key}"))
            columns.append(
                sa.Column(*args, primary_key=col.name == spec.key, nullable=not col.required)
            )
        table = sa.Table(name, metadata, *columns)
        # Ranking and feature building read a resident's history and a course's audience.
        for col in spec.columns:
            if col.references and (name, col.name) != ("participations", "resident_id"):
                sa.Index(f"ix_{name}_{col.name}", table.c[col.name])
    _resident_history_index(metadata.tables["participations"])
    _decisions_table(metadata)
    _experiment_tables(metadata)
    _profiles_table(metadata)
    return metadata


def _resident_history_index(p: sa.Table) -> sa.Index:
    """A resident's events in the order every list reads them, with what it reads (migration
    ``0005``): the read of :meth:`Store.resident_reads` is then one index range, not a table
    page per event (0.05 ms instead of 0.11-0.15 ms on the 400k district)."""
    return sa.Index("ix_participations_resident_history", p.c.resident_id, p.c.occurred_at,
                    p.c.event_id, p.c.event, p.c.course_id)


def _decisions_table(metadata: sa.MetaData) -> sa.Table:
    """The coordinators' decisions (migration ``0002``): one row per decision, kept when undone.

    The migration spells the same columns out on purpose: a migration is frozen history and must
    not change when this definition does; a test checks that the two agree today.
    """
    table = sa.Table(
        "decisions", metadata,
        sa.Column("decision_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("community_id", sa.String(64), nullable=False),
        sa.Column("band", sa.String(32), nullable=False),
        sa.Column("course_id", sa.String(64), sa.ForeignKey("courses.course_id"),
                  nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.Column("undone_by", sa.String(128), nullable=True),
    )
    sa.Index("ix_decisions_cohort", table.c.community_id, table.c.band)
    return table


def _experiment_tables(metadata: sa.MetaData) -> None:
    """The A/B tests' experiments and impressions (migration ``0003``, spelled out there too)."""
    sa.Table(
        "experiments", metadata,
        sa.Column("experiment_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("version_a", sa.String(128), nullable=False),
        sa.Column("version_b", sa.String(128), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("started_by", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("stopped_by", sa.String(128), nullable=True),
    )
    impressions = sa.Table(
        "impressions", metadata,
        sa.Column("impression_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("resident_id", sa.String(64), nullable=True),
        sa.Column("household_id", sa.String(64), nullable=True),
        sa.Column("band", sa.String(32), nullable=True),
        sa.Column("experiment_id", sa.Integer(), sa.ForeignKey("experiments.experiment_id"),
                  nullable=True),
        sa.Column("variant", sa.String(1), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("courses", sa.Text(), nullable=False),
        sa.Column("served_at", sa.DateTime(), nullable=False),
    )
    sa.Index("ix_impressions_experiment", impressions.c.experiment_id, impressions.c.variant)
    sa.Index("ix_impressions_resident", impressions.c.resident_id)


def _profiles_table(metadata: sa.MetaData) -> None:
    """Residents' declared profiles (migration ``0004``, spelled out there too; see
    :mod:`recommender.data.profiles`)."""
    sa.Table(
        "resident_profiles", metadata,
        sa.Column("resident_id", sa.String(64), sa.ForeignKey("residents.resident_id"),
                  primary_key=True),
        sa.Column("age_band", sa.String(32), nullable=True),
        sa.Column("interests", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


METADATA = build_metadata()


def _statements(tables) -> dict[str, sa.Executable]:
    """The per-request queries, built once at import: SQLAlchemy then reuses their compiled
    form from its cache (building a select costs ~0.2 ms, more than running it by key)."""
    p, r = tables["participations"], tables["residents"]
    resident_id = sa.bindparam("resident_id")
    return {
        "commitments": sa.select(p.c.course_id, p.c.event)
        .where(_committed_by(p, resident_id)).order_by(*_commitment_order(p)),
        "resident": sa.select(r).where(r.c.resident_id == resident_id),
        "resident_reads": _resident_reads(tables, resident_id),
        "ping": sa.select(sa.literal(1)),
        "profile": sa.select(tables["resident_profiles"])
        .where(tables["resident_profiles"].c.resident_id == resident_id),
        "seats_taken": _seats_taken(_seat_holders(p, sa.true())),
        "seats_taken_of": _seats_taken(_seat_holders(
            p, p.c.course_id.in_(sa.bindparam("course_ids", expanding=True)))),
        "seat_holders": _seat_holders(p, sa.true()),
        "seat_holders_of": _seat_holders(
            p, p.c.resident_id.in_(sa.bindparam("resident_ids", expanding=True))),
    }


def _committed_by(p: sa.Table, resident_id: sa.ColumnElement) -> sa.ColumnElement:
    """The rows of :meth:`Store.commitments`: a resident's :data:`COMMIT_EVENTS`."""
    return sa.and_(p.c.resident_id == resident_id, p.c.event.in_(COMMIT_EVENTS))


def _commitment_order(p: sa.Table) -> tuple[sa.ColumnElement, ...]:
    """Oldest first; events at the same time by ``event_id``, so every backend agrees."""
    return p.c.occurred_at, p.c.event_id


def _resident_reads(tables, resident_id: sa.BindParameter) -> sa.Select:
    """One statement for :meth:`Store.resident_reads`: the ``residents`` row, the declared
    profile and the commitments of one resident, a row per commitment (one row without any).

    The id itself is the one-row table the rest is joined to, so an id that is not stored
    still gives a row (of NULLs) and the answer does not lean on the foreign keys.
    """
    p, r = tables["participations"], tables["residents"]
    profiles = tables["resident_profiles"]
    wanted = sa.select(sa.cast(resident_id, sa.String()).label("resident_id")).subquery()
    return (sa.select(*r.c, *[c for c in profiles.c if c.name != "resident_id"],
                      p.c.course_id, p.c.event)
            .select_from(wanted
                         .outerjoin(r, r.c.resident_id == wanted.c.resident_id)
                         .outerjoin(profiles, profiles.c.resident_id == wanted.c.resident_id)
                         .outerjoin(p, _committed_by(p, wanted.c.resident_id)))
            .order_by(*_commitment_order(p)))


def _seat_holders(p: sa.Table, where: sa.ColumnElement) -> sa.Select:
    """``(course_id, resident_id)`` of the residents whose latest commitment to a course is one
    of :data:`SEAT_EVENTS`, among the rows ``where`` keeps.

    Latest is by ``occurred_at``, then ``event_id`` (the order of :meth:`Store.commitments`), so
    events posted out of order still leave each resident in one state per course.
    """
    # Partitioned resident first: SQLite then reads every commitment from the covering index of
    # a resident's history in its order and sorts only within each resident (7.6 s for the 400k
    # district's seats, against 21 s through the course_id index and the table's pages).
    latest = sa.func.row_number().over(
        partition_by=(p.c.resident_id, p.c.course_id),
        order_by=(p.c.occurred_at.desc(), p.c.event_id.desc()))
    ranked = (sa.select(p.c.course_id, p.c.resident_id, p.c.event, latest.label("nth"))
              .where(p.c.event.in_(COMMIT_EVENTS), where).subquery())
    return (sa.select(ranked.c.course_id, ranked.c.resident_id)
            .where(ranked.c.nth == 1, ranked.c.event.in_(SEAT_EVENTS)))


def _seats_taken(holders: sa.Select) -> sa.Select:
    held = holders.subquery()
    return sa.select(held.c.course_id, sa.func.count()).group_by(held.c.course_id)


_STATEMENTS = _statements(METADATA.tables)
# Indexes that a load into an empty table builds after its rows (Store.bulk_load).
BULK_DEFERRED = {"participations": ("ix_participations_resident_history",)}


def _deferred_indexes(table: str) -> list[sa.Index]:
    return [index for index in METADATA.tables[table].indexes
            if index.name in BULK_DEFERRED.get(table, ())]

# The columns of a resident_reads row before the commitment's two (see _resident_reads).
_RESIDENT_COLUMNS = tuple(METADATA.tables["residents"].c.keys())
_PROFILE_COLUMNS = tuple(c for c in METADATA.tables["resident_profiles"].c.keys()
                         if c != "resident_id")


class _DriverQuery:
    """A per-request read run on the driver's own cursor, through the engine's pool.

    SQLAlchemy's execution (cache lookup, execution context, result object) costs about what
    SQLite's own work for a resident's list read does (~50 µs each, holding the GIL), so the
    statement is compiled once for the engine's dialect, its fixed ``IN`` lists expanded, and
    each run only binds its parameters. Values the driver returns in a stored form (SQLite's
    dates are text) go through the column's own result processor, as SQLAlchemy's would, and
    driver errors are raised as :data:`StoreError` like every other read's. The engine is the
    store's at each call (tests point a store at another database by swapping it).
    """

    def __init__(self, stmt: sa.Select) -> None:
        self.stmt = stmt
        self._compiled: tuple | None = None  # (dialect, sql, fixed values, order, processors)

    def _compile(self, dialect: sa.Dialect, example: dict) -> tuple:
        compiled = self._compiled
        if compiled is None or compiled[0] is not dialect:
            state = self.stmt.compile(dialect=dialect).construct_expanded_state(example)
            processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                               for column in self.stmt.selected_columns)
            # positiontup None: the driver takes named parameters
            compiled = self._compiled = (dialect, state.statement, dict(state.parameters),
                                         state.positiontup, processors)
        return compiled

    def rows(self, engine: sa.Engine, **params) -> tuple[list[tuple], tuple]:
        """Every row, unconverted, and the columns' converters (for :func:`_converted`)."""
        # Checked out first: a dialect learns its server's version on the first connection.
        conn = engine.raw_connection()  # pre-pinged on PostgreSQL, like engine.connect()
        dbapi_error = engine.dialect.loaded_dbapi.Error
        sql, args = None, params
        try:
            _, sql, fixed, order, processors = self._compile(engine.dialect, params)
            values = {**fixed, **params}
            args = values if order is None else tuple(values[k] for k in order)
            cursor = conn.cursor()
            try:
                cursor.execute(sql, args)
                return cursor.fetchall(), processors
            finally:
                cursor.close()
        except dbapi_error as exc:
            raise sa.exc.DBAPIError.instance(sql, args, exc, dbapi_error) from exc
        finally:
            conn.close()  # back to the pool, rolled back: the next read sees every commit


def _profile_of(row) -> dict:
    """A stored ``resident_profiles`` row (a mapping) as :meth:`Store.profile` answers it: the
    interests decoded into a tuple."""
    return {**dict(row), "interests": decode_interests(row["interests"])}


def _converted(row: tuple, processors: tuple) -> tuple:
    """A driver's ``row`` with each value as SQLAlchemy would return it."""
    return tuple(value if convert is None or value is None else convert(value)
                 for convert, value in zip(processors, row))


@dataclass(frozen=True)
class ResidentReads:
    """What a resident's list reads from the store, read together (:meth:`Store.resident_reads`).

    Each field is what the named method answers on its own: ``commitments`` as
    :meth:`Store.commitments`, ``resident`` as :meth:`Store.resident`, ``profile`` as
    :meth:`Store.profile`.
    """

    commitments: list[tuple[str, str]]
    resident: dict | None
    profile: dict | None


@dataclass(frozen=True)
class InsertResult:
    """What one bulk insert did: rows stored, and rows whose key was already there."""

    inserted: int
    duplicates: int


def column_values(frame: pd.DataFrame, name: str, kind: str, iso: bool) -> list:
    """One column as a list of driver values, converted per column (not per cell).

    ``iso`` gives dates and datetimes as ISO text (SQLite stores them so; its datetime
    adapters are deprecated); otherwise ``datetime.date`` / ``datetime.datetime``. Missing
    values (None, NaN, NaT, NA) become None.
    """
    if name not in frame:
        return [None] * len(frame)
    series = frame[name]
    missing = series.isna().to_numpy()
    if kind in ("date", "datetime"):
        stamps = pd.to_datetime(series)
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_localize(None)
        if iso:
            fmt = "%Y-%m-%d" if kind == "date" else "%Y-%m-%d %H:%M:%S.%f"
            values = stamps.dt.strftime(fmt).to_numpy(dtype=object)
        elif kind == "date":
            values = stamps.dt.date.to_numpy(dtype=object)
        else:
            values = np.asarray(stamps.dt.to_pydatetime(), dtype=object)
    elif kind == "int":
        values = pd.to_numeric(series).astype("Int64").astype(object).to_numpy()
    elif kind == "float":
        values = pd.to_numeric(series).astype("float64").astype(object).to_numpy()
    elif pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series):
        values = series.astype(object).to_numpy()
    else:
        values = series.astype(object).to_numpy()
        values = np.array([v if isinstance(v, str) else str(v) for v in values], dtype=object)
    values = np.array(values, dtype=object)  # a writable copy (pandas may hand out views)
    values[missing] = None
    return values.tolist()


class Store:
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

    # -- what the serving layer asks, per request or per model load ---------------------
    def commitments(self, resident_id: str) -> list[tuple[str, str]]:
        """A resident's commitment events as ``(course_id, event)``, oldest first.

        Only :data:`COMMIT_EVENTS` (enroll, attend, complete, cancel); events at the same time
        are ordered by ``event_id``. Read by the indexed ``resident_id``.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(_STATEMENTS["commitments"], {"resident_id": resident_id})
            return [(course, event) for course, event in rows]

    def resident(self, resident_id: str) -> dict | None:
        """A resident's ``residents`` row as a dict, or None when it is not stored."""
        with self.engine.connect() as conn:
            row = conn.execute(_STATEMENTS["resident"],
                               {"resident_id": resident_id}).mappings().first()
        return dict(row) if row else None

    def profile(self, resident_id: str) -> dict | None:
        """A resident's declared profile (``resident_id``, ``age_band``, ``interests`` as a
        tuple, ``updated_at``), or None when none is stored. Read by its key."""
        with self.engine.connect() as conn:
            row = conn.execute(_STATEMENTS["profile"],
                               {"resident_id": resident_id}).mappings().first()
        return None if row is None else _profile_of(row)

    def resident_reads(self, resident_id: str) -> ResidentReads:
        """:meth:`commitments`, :meth:`resident` and :meth:`profile` of one resident in one
        statement on one connection: what every list for a resident reads, per request, so one
        round trip and one pool checkout instead of three."""
        rows, processors = self._resident_reads.rows(self.engine, resident_id=resident_id)
        first = _converted(rows[0], processors)  # the id's own row: there is always one
        n, m = len(_RESIDENT_COLUMNS), len(_PROFILE_COLUMNS)
        resident = dict(zip(_RESIDENT_COLUMNS, first[:n])) if first[0] is not None else None
        stored = dict(zip(_PROFILE_COLUMNS, first[n:n + m]))
        profile = (_profile_of({"resident_id": resident_id, **stored})
                   if stored["interests"] is not None else None)  # NOT NULL when stored
        # Without a commitment the row's last two columns are NULL (the outer join); both are
        # text, which no driver returns in another form.
        commitments = [(row[-2], row[-1]) for row in rows if row[-2] is not None]
        return ResidentReads(commitments, resident, profile)

    def seats_taken(self, course_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Seats taken per course: residents whose latest commitment to it is an enrolment or
        an attendance (:data:`SEAT_EVENTS`).

        A cancellation from a resident who never enrolled frees nothing, enrolling twice takes
        one seat, and a count is never negative. ``course_ids`` limits the answer to those
        courses (read through the ``course_id`` index); courses with no seat taken are absent.
        """
        rows = self._every_or_of("seats_taken", "course_ids", course_ids)
        return {str(course): int(n) for course, n in rows}

    def seat_holders(self, resident_ids: Iterable[str] | None = None
                     ) -> list[tuple[str, str]]:
        """``(course_id, resident_id)`` of every seat taken (the rule of :meth:`seats_taken`),
        or only those of ``resident_ids`` (read through the ``resident_id`` index)."""
        rows = self._every_or_of("seat_holders", "resident_ids", resident_ids)
        return [(str(course), str(resident)) for course, resident in rows]

    def _every_or_of(self, statement: str, name: str, ids: Iterable[str] | None) -> list:
        """The rows of ``statement`` (every row), or of ``statement + "_of"`` for the distinct
        ``ids`` bound as ``name``, 500 at a time (a statement's parameters are bounded)."""
        with self.engine.connect() as conn:
            if ids is None:
                return conn.execute(_STATEMENTS[statement]).all()
            wanted, rows = list(dict.fromkeys(ids)), []
            for start in range(0, len(wanted), 500):
                rows += conn.execute(_STATEMENTS[f"{statement}_of"],
                                     {name: wanted[start:start + 500]}).all()
            return rows

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

    # -- coordinators' decisions -------------------------------------------------------
    def add_decision(self, *, community_id: str, band: str, course_id: str, action: str,
                     decided_by: str, note: str | None = None,
                     at: dt.datetime | None = None) -> int:
        """Record a coordinator's decision about a course for a cohort; return its id.

        Parameters
        ----------
        community_id, band : str
            The cohort; :data:`ALL` for every community or every band.
        course_id : str
            A stored course (the foreign key is enforced).
        action : str
            One of :data:`DECISION_ACTIONS`.
        decided_by : str
            Who decided: a role and a non-secret key fingerprint, never the key.
        note : str, optional
            Why.
        at : datetime, optional
            When (naive UTC); default now.

        Raises
        ------
        ValueError
            Naming the field and value when ``action`` or ``band`` is not one of its choices.
        """
        if action not in DECISION_ACTIONS:
            raise ValueError(f"action: {action!r} is not one of {', '.join(DECISION_ACTIONS)}")
        if band != ALL and band not in BAND_NAMES:
            raise ValueError(f"band: {band!r} is not {ALL!r} or one of {', '.join(BAND_NAMES)}")
        row = {"community_id": community_id, "band": band, "course_id": course_id,
               "action": action, "note": note, "decided_by": decided_by,
               "decided_at": at or _utc_now()}
        with self.engine.begin() as conn:
            result = conn.execute(sa.insert(self.tables["decisions"]).values(**row))
            return int(result.inserted_primary_key[0])

    def undo_decision(self, decision_id: int, by: str, at: dt.datetime | None = None) -> bool:
        """Undo a decision, keeping its row; False when it was already undone.

        Raises
        ------
        KeyError
            When no decision has this id.
        """
        t = self.tables["decisions"]
        with self.engine.begin() as conn:
            changed = conn.execute(
                sa.update(t).where(t.c.decision_id == decision_id, t.c.undone_at.is_(None))
                .values(undone_at=at or _utc_now(), undone_by=by)).rowcount
            if changed:
                return True
            if conn.execute(sa.select(t.c.decision_id)
                            .where(t.c.decision_id == decision_id)).first() is None:
                raise KeyError(f"decision_id: no decision {decision_id}")
            return False

    def decision(self, decision_id: int) -> dict | None:
        """One decision as a dict (see :meth:`decisions`), or None when there is none."""
        t = self.tables["decisions"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.decision_id == decision_id)).mappings()
            found = row.first()
        return dict(found) if found else None

    def decisions(self, community_id: str | None = None, band: str | None = None,
                  active_only: bool = True) -> list[dict]:
        """Decisions as dicts (every column of ``decisions``), oldest first.

        ``community_id`` and ``band`` match the stored cohort exactly (``"all"`` matches only
        district-wide decisions; None: any); ``active_only`` leaves out undone ones.
        """
        t = self.tables["decisions"]
        stmt = sa.select(t).order_by(t.c.decision_id)
        if community_id is not None:
            stmt = stmt.where(t.c.community_id == community_id)
        if band is not None:
            stmt = stmt.where(t.c.band == band)
        if active_only:
            stmt = stmt.where(t.c.undone_at.is_(None))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(stmt).mappings()]

    # -- A/B tests: experiments and impressions ------------------------------------------
    def start_experiment(self, *, version_a: str, version_b: str, share: float,
                         started_by: str, note: str | None = None,
                         at: dt.datetime | None = None) -> dict:
        """Record a new running experiment (B served to ``share`` of residents); return its row.

        Raises
        ------
        ValueError
            Naming the field when ``share`` is not strictly between 0 and 1, or the two versions
            are empty or the same.
        ExperimentConflict
            When an experiment is already running (stop it first).
        """
        if not 0.0 < share < 1.0:
            raise ValueError(f"share: {share!r} is not strictly between 0 and 1")
        for name, value in (("version_a", version_a), ("version_b", version_b)):
            if not value:
                raise ValueError(f"{name}: empty")
        if version_a == version_b:
            raise ValueError(f"version_b: the same version as version_a ({version_a!r})")
        t = self.tables["experiments"]
        row = {"version_a": version_a, "version_b": version_b, "share": float(share),
               "note": note, "started_by": started_by, "started_at": at or _utc_now()}
        with self.engine.begin() as conn:
            running = conn.execute(sa.select(t.c.experiment_id)
                                   .where(t.c.stopped_at.is_(None))).first()
            if running is not None:
                raise ExperimentConflict(f"experiment: experiment {running[0]} is running; "
                                         "stop it first")
            key = conn.execute(sa.insert(t).values(**row)).inserted_primary_key[0]
        return {"experiment_id": int(key), **row, "stopped_at": None, "stopped_by": None}

    def stop_experiment(self, by: str, at: dt.datetime | None = None) -> dict | None:
        """Stop the running experiment and return its row; None when none runs."""
        t = self.tables["experiments"]
        with self.engine.begin() as conn:
            running = conn.execute(sa.select(t).where(t.c.stopped_at.is_(None))).mappings()
            found = running.first()
            if found is None:
                return None
            values = {"stopped_at": at or _utc_now(), "stopped_by": by}
            conn.execute(sa.update(t).where(t.c.experiment_id == found["experiment_id"])
                         .values(**values))
        return {**dict(found), **values}

    def running_experiment(self) -> dict | None:
        """The running experiment's row, or None."""
        t = self.tables["experiments"]
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(t).where(t.c.stopped_at.is_(None))).mappings().first()
        return dict(found) if found else None

    def experiment(self, experiment_id: int | None = None) -> dict | None:
        """One experiment's row (default: the newest one), or None when there is none."""
        t = self.tables["experiments"]
        stmt = sa.select(t)
        stmt = (stmt.where(t.c.experiment_id == experiment_id) if experiment_id is not None
                else stmt.order_by(t.c.experiment_id.desc()).limit(1))
        with self.engine.connect() as conn:
            found = conn.execute(stmt).mappings().first()
        return dict(found) if found else None

    def experiments(self) -> list[dict]:
        """Every experiment, running or stopped, newest first."""
        t = self.tables["experiments"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.experiment_id.desc())).mappings()
            return [dict(row) for row in rows]

    def add_impressions(self, rows: list[dict]) -> int:
        """Store served lists (dicts of :data:`IMPRESSION_COLUMNS`) in one transaction.

        Raises
        ------
        ValueError
            Naming the row and field when a ``kind`` is not one of :data:`IMPRESSION_KINDS`.
        """
        for n, row in enumerate(rows):
            if row.get("kind") not in IMPRESSION_KINDS:
                raise ValueError(f"impressions[{n}].kind: {row.get('kind')!r} is not one of "
                                 f"{', '.join(IMPRESSION_KINDS)}")
        if not rows:
            return 0
        with self.engine.begin() as conn:
            conn.execute(sa.insert(self.tables["impressions"]),
                         [{c: row.get(c) for c in IMPRESSION_COLUMNS} for row in rows])
        return len(rows)

    def impressions(self, experiment_id: int | None = None) -> pd.DataFrame:
        """Stored impressions (of one experiment, or all), oldest first, one row per list."""
        t = self.tables["impressions"]
        stmt = sa.select(t).order_by(t.c.impression_id)
        if experiment_id is not None:
            stmt = stmt.where(t.c.experiment_id == experiment_id)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(stmt).fetchall(),
                                 columns=["impression_id", *IMPRESSION_COLUMNS])
        frame["served_at"] = pd.to_datetime(frame["served_at"])
        frame["experiment_id"] = pd.array(frame["experiment_id"], dtype="Int64")
        text = ["request_id", "kind", "resident_id", "household_id", "band", "variant",
                "model_version", "courses"]
        frame[text] = frame[text].astype(object).where(frame[text].notna(), None)
        return frame

    def enrolments_since(self, since: dt.datetime,
                         resident_ids: Iterable[str]) -> pd.DataFrame:
        """The ``enroll`` events of ``resident_ids`` at or after ``since``:
        ``resident_id, course_id, occurred_at``."""
        p = self.tables["participations"]
        ids = list(dict.fromkeys(resident_ids))
        rows: list = []
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                rows += conn.execute(sa.select(p.c.resident_id, p.c.course_id, p.c.occurred_at)
                                     .where(p.c.event == "enroll", p.c.occurred_at >= since,
                                            p.c.resident_id.in_(chunk))).all()
        frame = pd.DataFrame(rows, columns=["resident_id", "course_id", "occurred_at"])
        frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
        return frame

    def household_members(self, household_ids: Iterable[str]) -> dict[str, list[str]]:
        """The stored residents of each household (households without any are absent)."""
        r = self.tables["residents"]
        ids = list(dict.fromkeys(household_ids))
        members: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                for household, resident in conn.execute(
                        sa.select(r.c.household_id, r.c.resident_id)
                        .where(r.c.household_id.in_(chunk)).order_by(r.c.resident_id)):
                    members.setdefault(household, []).append(resident)
        return members

    def ping(self) -> None:
        """Run a trivial query; raises :data:`StoreError` when the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(_STATEMENTS["ping"]).scalar()

    def dispose(self) -> None:
        """Close every pooled connection (the store can still be used; it reconnects)."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.engine.url.render_as_string(hide_password=True)!r})"


def _utc_now() -> dt.datetime:
    """Now in UTC, naive (how decision times are stored on both backends)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _typed(spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Give a frame read back from SQL the same dtypes on every backend."""
    for col in spec.columns:
        if col.kind == "int":
            frame[col.name] = pd.array(frame[col.name], dtype="Int64")
        elif col.kind == "float":
            frame[col.name] = pd.to_numeric(frame[col.name]).astype("float64")
        elif col.kind in ("date", "datetime"):
            frame[col.name] = pd.to_datetime(frame[col.name])
        else:
            frame[col.name] = frame[col.name].astype("object").where(frame[col.name].notna(), None)
    return frame


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


class _RowidFeed(EventFeed):
    """SQLite: rows past a ``rowid`` mark. SQLite lets one writer in at a time and a new row
    takes the next ``rowid`` (participations are never deleted), so ``rowid`` order is commit
    order and a mark never skips a row that commits later."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._rowid = sa.literal_column("rowid")
        with store.engine.connect() as conn:
            self.mark = conn.execute(sa.select(sa.func.coalesce(sa.func.max(self._rowid), 0))
                                     .select_from(store.tables["participations"])).scalar()

    def poll(self, limit: int = 10_000) -> pd.DataFrame:
        t = self.store.tables["participations"]
        stmt = (sa.select(self._rowid, *t.c).where(self._rowid > self.mark)
                .order_by(self._rowid).limit(limit))
        with self.store.engine.connect() as conn:
            rows = conn.execute(stmt).fetchall()
        if rows:
            self.mark = rows[-1][0]
        frame = pd.DataFrame([row[1:] for row in rows], columns=TABLES["participations"]
                             .column_names)
        return _typed(TABLES["participations"], frame)


class _NotifyFeed(EventFeed):
    """PostgreSQL: a listening connection. Inserts made with ``announce`` send the new event ids
    with ``pg_notify`` in their own transaction, so a listener hears of exactly the committed
    rows, in commit order; the rows are then read by key. A lost connection raises
    :data:`StoreError` from :meth:`poll` (what was sent meanwhile is not heard: the caller
    recounts from the store)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._raw = store.engine.raw_connection()
        self._conn = self._raw.driver_connection
        self._raw.detach()  # a connection of its own, never handed back to the pool
        self._conn.autocommit = True
        cur = self._conn.cursor()
        cur.execute(f'LISTEN "{_channel(cur)}"')
        self._pending: list[str] = []

    def poll(self, limit: int = 10_000) -> pd.DataFrame:
        try:
            for note in self._conn.notifies(timeout=0):
                self._pending.extend(note.payload.split("\n"))
        except Exception as exc:  # psycopg's own error, reported as the store's
            raise sa.exc.OperationalError("LISTEN", None, exc) from exc
        ids, self._pending = self._pending[:limit], self._pending[limit:]
        if not ids:
            return self.store.read("participations", sa.false())
        order = {key: k for k, key in enumerate(ids)}
        found = self.store.events(ids)
        return found.sort_values("event_id", key=lambda col: col.map(order), ignore_index=True)

    def close(self) -> None:
        self._raw.close()


def _channel(cur) -> str:
    """The notification channel of this database and schema (schemas are separate stores)."""
    cur.execute("SELECT current_database() || '.' || current_schema()")
    where = cur.fetchone()[0]
    return "participations_" + hashlib.sha1(where.encode()).hexdigest()[:16]


def _payloads(ids: list[str], limit: int = 7_000) -> Iterable[str]:
    """``ids`` joined by newlines in pieces under ``pg_notify``'s 8,000-byte payload limit
    (ids are validated text without control characters)."""
    piece: list[str] = []
    size = 0
    for key in ids:
        if piece and size + len(key.encode()) + 1 > limit:
            yield "\n".join(piece)
            piece, size = [], 0
        piece.append(key)
        size += len(key.encode()) + 1
    if piece:
        yield "\n".join(piece)


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
