"""The impression log: every served list, written to the store behind the request.

A request only builds one small dict and puts it on a queue (a few microseconds); a background
thread wakes every ``interval`` seconds and writes what arrived, in batches of up to
``batch_size`` rows, into :meth:`Store.add_impressions
<recommender.data.store.Store.add_impressions>`. :meth:`ImpressionLog.close` (the app's
shutdown) writes everything still queued, so a clean shutdown loses nothing. When the store
refuses a batch it is kept and tried again; rows beyond ``max_pending`` are dropped oldest first,
logged as an error and counted in :attr:`ImpressionLog.dropped`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING

from recommender.domain import DISTRICT_TIMEZONE
from recommender.serving.intake import district_now

if TYPE_CHECKING:
    from recommender.data.store import Store
    from recommender.serving.experiments import Arm

log = logging.getLogger(__name__)


class ImpressionLog:
    """Write-behind log of served lists.

    Parameters
    ----------
    store : Store
        Where impressions are written.
    timezone : str
        District time zone: ``served_at`` is stored naive in it, like participation times.
    batch_size : int
        Rows written in one transaction at most.
    interval : float
        Seconds the writer sleeps between two rounds of writing what arrived.
    max_pending : int
        Rows kept while the store refuses writes; beyond them the oldest are dropped.
    retry_seconds : float
        Seconds between attempts while the store refuses writes.
    enabled : bool
        False: :meth:`record` only makes the request id (benchmarks compare the two).
    """

    def __init__(self, store: Store, timezone: str = DISTRICT_TIMEZONE, batch_size: int = 500,
                 interval: float = 0.2, max_pending: int = 200_000, retry_seconds: float = 1.0,
                 enabled: bool = True) -> None:
        self.store = store
        self.timezone = timezone
        self.batch_size = batch_size
        self.interval = interval
        self.max_pending = max_pending
        self.retry_seconds = retry_seconds
        self.enabled = enabled
        self.recorded = 0
        self.written = 0
        self.dropped = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: deque[dict] = deque()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._count_lock = threading.Lock()
        self._retry_at = 0.0
        self._wake = threading.Event()

    def record(self, kind: str, items: list[dict], model_version: str, arm: Arm | None = None,
               *, resident_id: str | None = None, household_id: str | None = None,
               band: str | None = None) -> str:
        """Queue one served list (``items`` in their order, each with a ``course_id``); return
        the request id that names it."""
        request_id = uuid.uuid4().hex
        if not self.enabled:
            return request_id
        if self._thread is None:
            self._start()
        with self._count_lock:
            self.recorded += 1
        self._queue.put({
            "request_id": request_id, "kind": kind, "resident_id": resident_id,
            "household_id": household_id, "band": band,
            "experiment_id": arm.experiment_id if arm else None,
            "variant": arm.variant if arm else None, "model_version": model_version,
            "courses": "|".join(item["course_id"] for item in items),
            "served_at": district_now(self.timezone)})
        return request_id

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Block until every row queued before the call is written; False on ``timeout``."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Write what is queued and stop the writer (the app's shutdown)."""
        if self._closed:
            return
        if not self.flush(timeout):
            log.error("impression log: %d rows not written at shutdown (the store did not "
                      "answer within %.0f s)", self.pending,
                      timeout or 0)
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._wake.set()
            self._thread.join(timeout)

    @property
    def pending(self) -> int:
        """Rows recorded and neither written nor dropped yet."""
        return self.recorded - self.written - self.dropped

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name="impression-log",
                                                daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        """The writer: every ``interval`` (or at once when a flush asks), take everything that
        arrived, write it in batches, and answer the flushes once their rows are in.

        It sleeps instead of waiting on the queue: a thread woken by every put would take the
        GIL from the request thread once per request, and on a busy machine each hand-over
        costs a scheduling delay."""
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            flushes, stop = [], False
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    flushes.append(item)
                else:
                    self._pending.append(item)
            if self._write():
                for event in flushes:
                    event.set()
            else:  # the store refused: answer after the rows are in, or let the caller time out
                for event in flushes:
                    self._queue.put(event)
            if stop:
                return

    def _write(self) -> bool:
        """Write the pending rows in batches; False when the store refused (rows kept) or
        was refusing less than ``retry_seconds`` ago."""
        if self._pending and time.monotonic() < self._retry_at:
            self._cap()
            return False
        while self._pending:
            batch = [self._pending[i] for i in range(min(self.batch_size, len(self._pending)))]
            try:
                self.store.add_impressions(batch)
            except Exception as exc:
                log.error("impression log: the store refused %d rows (kept, %d waiting; next "
                          "try in %.1f s): %s", len(batch), len(self._pending),
                          self.retry_seconds, exc)
                self._retry_at = time.monotonic() + self.retry_seconds
                self._cap()
                return False
            for _ in batch:
                self._pending.popleft()
            self.written += len(batch)
        return True

    def _cap(self) -> None:
        over = len(self._pending) - self.max_pending
        if over > 0:
            for _ in range(over):
                self._pending.popleft()
            self.dropped += over
            log.error("impression log: %d rows dropped (more than %d waiting for the store)",
                      over, self.max_pending)


__all__ = ["ImpressionLog"]
