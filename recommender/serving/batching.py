"""Lists asked while others are being ranked are ranked together.

The ranking handlers rank on the event loop, one call at a time. Under load, requests whose
store reads finish while a ranking runs wait for the loop anyway; :class:`ListBatcher` lets
them wait in one queue and ranks the whole queue in one call when the loop is free
(:meth:`RecommendationService.for_residents
<recommender.serving.service.RecommendationService.for_residents>`): one resident's ranking is
mostly per-call numpy overhead, which residents ranked together share. A request alone is
ranked at once, as before; nothing waits on a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")

# At most this many requests in one ranking call; a longer queue is ranked in several. Larger
# batches cost less CPU per list. While the store reads went through the thread pool, requests
# reached the queue in waves and batches above 4 left the worker idle between them; with the
# reads on the loop, 8, 12 and 16 served 1,015-1,028 lists/s at 32 clients on 2 workers and 4
# served 950 (docs/decisions.md).
MAX_BATCH = 8


class ListBatcher(Generic[Request, Answer]):
    """Queue requests on the running event loop; rank the queue in one ``rank_many`` call.

    ``rank_many(requests)`` returns one answer per request, or the exception that request
    raises. The queue is drained by a callback scheduled on the loop (``call_soon``) when its
    first request arrives, so every request that became ready in the meantime joins it.
    ``on_batch(size)``, when set, is told each call's size (the service's metrics).
    """

    def __init__(self, rank_many: Callable[[list[Request]], list[Answer | Exception]],
                 max_batch: int = MAX_BATCH) -> None:
        self.rank_many = rank_many
        self.max_batch = max_batch
        self.on_batch: Callable[[int], None] | None = None
        # per event loop (tests run several): what waits, and whether a drain is scheduled
        self._queues: dict[asyncio.AbstractEventLoop, list] = {}

    async def submit(self, request: Request) -> Answer:
        """The answer to ``request`` (raises what ranking it raised)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = []
            loop.call_soon(self._drain, loop)
        queue.append((request, future))
        return await future

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        queue = self._queues.pop(loop, [])
        batch, rest = queue[:self.max_batch], queue[self.max_batch:]
        if rest:  # the rest goes next, after what became ready meanwhile
            self._queues[loop] = rest
            loop.call_soon(self._drain, loop)
        waiting = [(request, future) for request, future in batch if not future.cancelled()]
        if not waiting:
            return
        if self.on_batch is not None:
            self.on_batch(len(waiting))
        try:
            answers = self.rank_many([request for request, _ in waiting])
        except Exception as exc:  # noqa: BLE001 - every waiting request gets it
            answers = [exc] * len(waiting)
        for (_, future), answer in zip(waiting, answers):
            if future.cancelled():
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)
