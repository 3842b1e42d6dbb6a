"""Keeping one serving process current with the events every process stores.

With several workers, an event posted to one of them must change the seats and the lists of all
of them. Each process runs a :class:`Follower`: a daemon thread that polls the store's event feed
(:meth:`Store.follow <recommender.data.store.Store.follow>`) every ``interval`` seconds and folds
what it hands out into the current model (:meth:`ModelHolder.fold
<recommender.serving.holder.ModelHolder.fold>`), so another worker's event shows within about
``interval`` seconds plus the time a fold takes. The process that stored an event has folded it
already; the holder's ``echoes`` keep it from counting twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from recommender.data.store import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from recommender.data.store import EventFeed, Store
    from recommender.serving.holder import ModelHolder

log = logging.getLogger(__name__)


class Follower:
    """Polls the store's event feed and folds new events into ``holder``'s current model.

    Open it before the holder's first load (the feed starts where the store is when it is
    opened, so no event falls between the load's seat count and the feed), then :meth:`start`.

    Parameters
    ----------
    store : Store
        The store every worker writes to.
    holder : ModelHolder
        The model to keep current.
    interval : float
        Seconds between polls.
    """

    def __init__(self, store: Store, holder: ModelHolder, interval: float = 0.5) -> None:
        self.store = store
        self.holder = holder
        self.interval = interval
        self._feed: EventFeed | None = store.follow()
        holder.echoes = set()
        # The other models served beside ``holder`` (an A/B test's variants), read at each poll.
        self.others: Callable[[], Sequence[ModelHolder]] = tuple
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="event-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and close the feed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._feed is not None:
            self._feed.close()
            self._feed = None

    def catch_up(self) -> int:
        """Fold every event the feed has now; returns how many it handed out."""
        seen = 0
        while True:
            with self.holder.ingest_lock:  # no own event is between its commit and its echo
                if self._feed is None:
                    self._reopen()
                rows = self._feed.poll()
                # This process folded its own events into every model already (the echoes).
                foreign = rows[~rows["event_id"].astype(str).isin(self.holder.echoes)]
                self.holder.fold(rows, own=False)
            for other in self.others():
                with other.ingest_lock:
                    other.fold(foreign, own=True)
            seen += len(rows)
            if rows.empty:
                return seen

    def _reopen(self) -> None:
        """A new feed after a lost one; what it missed is recounted from the store (the events'
        effect on residents' histories waits for the next model load)."""
        self._feed = self.store.follow()
        self.holder.recount_seats()
        log.warning("event feed reopened; seats recounted from the store")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.catch_up()
            except StoreError as exc:
                log.warning("event feed failed, reopening it at the next poll: %s",
                            str(exc).splitlines()[0])
                if self._feed is not None:
                    with contextlib.suppress(Exception):  # the connection is gone already
                        self._feed.close()
                self._feed = None
            except Exception:  # keep following; one bad batch must not stop every later one
                log.exception("folding events from the feed failed")


__all__ = ["Follower"]
