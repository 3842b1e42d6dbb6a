"""What coordinators keep in the store: their decisions about courses for cohorts, and the A/B
tests (experiments, the lists served under them, and the enrolments they are judged by).

:class:`CoordinatorRecords` holds these methods of :class:`recommender.data.store.base.Store`,
which inherits them, so that the base class stays about the district's own tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import pandas as pd
import sqlalchemy as sa

from recommender.data.store.queries import _utc_now
from recommender.domain import BAND_NAMES

# What a coordinator may decide about a course for a cohort; ``ALL`` is the cohort wildcard
# (every community, or every band).
DECISION_ACTIONS = ("approve", "reject", "pin")
ALL = "all"
# Who an impression's list was for: a resident, a household, or a profile (nobody registered).
IMPRESSION_KINDS = ("resident", "household", "profile")
IMPRESSION_COLUMNS = ("request_id", "kind", "resident_id", "household_id", "band",
                      "experiment_id", "variant", "model_version", "courses", "served_at")


class ExperimentConflict(RuntimeError):
    """An experiment was started while another one runs (only one runs at a time)."""


class CoordinatorRecords:
    """The store's methods for the ``decisions``, ``experiments`` and ``impressions`` tables,
    and the reads an A/B test report joins them with (a mixin of :class:`Store`)."""

    # Set by Store.__init__.
    engine: sa.Engine
    tables: Mapping[str, sa.Table]

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
