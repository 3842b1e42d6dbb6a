"""Each backend's feed of the participation events committed from now on, by any process
(:meth:`Store.follow`, the interface :class:`EventFeed`): rows past a ``rowid`` mark on
SQLite, ``LISTEN``/``NOTIFY`` on PostgreSQL (the inserting transaction sends the
notifications: ``PostgresStore._insert_ignore`` in :mod:`recommender.data.store.backends`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa

from recommender.data.store.base import EventFeed, Store
from recommender.data.store.queries import _typed
from recommender.domain import TABLES


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
