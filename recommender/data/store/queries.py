"""The store's per-request statements, the methods that run them, and values between pandas
frames and the database driver.

The statements are built once at import so SQLAlchemy reuses their compiled form; the hottest,
:meth:`Store.resident_reads`, runs on the driver's own cursor (:class:`_DriverQuery`).
:class:`ServingReads` holds the :class:`Store` methods that answer the serving layer with
them. :func:`column_values` turns a frame's column into driver values for the backends' bulk
inserts, and :func:`_typed` gives a frame read back the same dtypes on every backend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from recommender.data.profiles import decode_interests
from recommender.data.store.schema import METADATA
from recommender.domain import TableSpec

# Events that commit a resident to a course: enrolled (until cancelled), attended, completed.
COMMIT_EVENTS = ("enroll", "attend", "complete", "cancel")
# A resident holds a seat of a course while their latest commitment to it is one of these: a
# cancellation gives it back, a completion ends the course for them.
SEAT_EVENTS = ("enroll", "attend")


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


class ServingReads:
    """The store's methods that run these statements: what the serving layer asks, per request
    or per model load (a mixin of :class:`Store`)."""

    # Set by Store.__init__.
    engine: sa.Engine
    _resident_reads: _DriverQuery

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
