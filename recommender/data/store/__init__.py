"""The store: one interface over two SQL backends (SQLite embedded, PostgreSQL for production).

Every SQL statement of the code base lives in this package: the serving layer asks the store
named questions (:meth:`Store.commitments`, :meth:`Store.resident`, :meth:`Store.resident_reads`,
:meth:`Store.seats_taken`, :meth:`Store.decisions`, :meth:`Store.ping`, :meth:`Store.follow`)
and never builds a statement itself. The URL comes from the caller
(:class:`recommender.settings.Settings` for the command line and the API); :func:`open_store`
gives the backend for it.

By concept:

- :mod:`.schema`: the tables, built once from :data:`recommender.domain.TABLES` with SQLAlchemy
  Core (:func:`build_metadata`, checked against the Alembic migrations by the tests);
- :mod:`.queries`: the per-request statements, compiled once, the :class:`Store` methods that
  answer the serving layer with them, and values between pandas frames and the driver
  (:func:`column_values`);
- :mod:`.base`: :class:`Store`, what both backends share (schema, writes, reads),
  :data:`StoreError`, and :class:`EventFeed`, what :meth:`Store.follow` returns;
- :mod:`.coordinators`: the coordinators' decisions and the A/B tests' experiments and
  impressions, methods of :class:`Store`;
- :mod:`.backends`: :class:`SQLiteStore` and :class:`PostgresStore` with their bulk-insert
  paths, :func:`open_store` and :func:`unavailable_line`;
- :mod:`.feeds`: each backend's feed of the participation events other processes commit.
"""

from recommender.data.store.backends import (
    PostgresStore,
    SQLiteStore,
    open_store,
    unavailable_line,
)
from recommender.data.store.base import EventFeed, InsertResult, Store, StoreError
from recommender.data.store.coordinators import (
    ALL,
    DECISION_ACTIONS,
    IMPRESSION_COLUMNS,
    IMPRESSION_KINDS,
    ExperimentConflict,
)
from recommender.data.store.queries import (
    COMMIT_EVENTS,
    SEAT_EVENTS,
    ResidentReads,
    column_values,
)
from recommender.data.store.schema import BULK_DEFERRED, METADATA, build_metadata

__all__ = [
    "ALL", "BULK_DEFERRED", "COMMIT_EVENTS", "DECISION_ACTIONS", "IMPRESSION_COLUMNS",
    "IMPRESSION_KINDS", "METADATA", "SEAT_EVENTS", "EventFeed", "ExperimentConflict",
    "InsertResult", "PostgresStore", "ResidentReads", "SQLiteStore", "Store", "StoreError",
    "build_metadata", "column_values", "open_store", "unavailable_line",
]
