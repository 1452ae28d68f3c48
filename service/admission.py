"""Admission control: a bounded number of syntheses, and of decoded bytes, in the process at once.

Two budgets, both refused at once with a 503 and ``Retry-After`` rather than queued:

* **requests**: at most ``limit`` syntheses hold a slot, taken before the body is read;
* **memory**: once the upload has arrived, the bytes its files declare in their headers
  (:func:`synnet.imageio.read.declared_bytes`: the data inflated plus the float32 image) are reserved
  against ``max_bytes`` before anything is decoded. A request that alone declares more than the
  whole budget could never run: it gets 413.

Refusing early keeps memory bounded and latency honest under overload: a client, or nginx in
front of several replicas, can retry elsewhere instead of queueing without limit behind work
that may already be too late.

The gate also knows which tasks hold a slot, so that a drain (SIGTERM) can stop admitting and,
once its timeout has passed, cut what is still running: each cut request gets a JSON 503
``shutting_down`` through the ordinary error handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from service.errors import QueueFullError
from synnet.errors import SynnetError


class ShuttingDownError(SynnetError):
    """The service is draining (SIGTERM): no new work, and work cut at the drain timeout."""

    code = "shutting_down"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AdmissionGate:
    """Non-blocking counters of syntheses and of their declared decoded bytes in flight.

    Args:
        limit: syntheses admitted at once.
        retry_after_s: the ``Retry-After`` of a refusal.
        max_bytes: decoded bytes the admitted requests may declare at once.
        on_change: called with the number of syntheses in flight whenever it changes.
    """

    def __init__(
        self,
        limit: int,
        retry_after_s: int,
        max_bytes: int | None = None,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.max_bytes = max_bytes
        self.in_flight = 0
        self.bytes_in_flight = 0
        self.draining = False
        self._on_change = on_change
        self._tasks: set[asyncio.Task[object]] = set()
        self._cut: set[asyncio.Task[object]] = set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the body of the ``async with``.

        Raises:
            QueueFullError: when ``limit`` syntheses are already in flight.
            ShuttingDownError: while draining, and in a request cut by :meth:`cut`.
        """
        if self.draining:
            raise self._shutting_down("the service is shutting down; send the request to another replica")
        if self.in_flight >= self.limit:
            raise QueueFullError(
                f"the service is busy: {self.in_flight} syntheses in progress (limit {self.limit}); retry later",
                retry_after_s=self.retry_after_s,
            )
        task = asyncio.current_task()
        self._change(+1)
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if task is None or task not in self._cut:
                raise
            task.uncancel()  # our own cancellation, turned into an answer
            raise self._shutting_down("the service shut down before this synthesis finished; retry") from None
        finally:
            if task is not None:
                self._tasks.discard(task)
                self._cut.discard(task)
            self._change(-1)

    @asynccontextmanager
    async def reserve(self, nbytes: int) -> AsyncIterator[None]:
        """Hold ``nbytes`` of the decoded-bytes budget for the body of the ``async with``.

        Raises:
            QueueFullError: the budget cannot hold ``nbytes`` more now (503, retry later).
            SynnetError: ``too_large`` (413) when ``nbytes`` alone exceed the whole budget.
        """
        if self.max_bytes is not None:
            if nbytes > self.max_bytes:
                raise SynnetError(
                    f"the request is too large: its images declare {nbytes} bytes decoded, over the "
                    f"service's budget of {self.max_bytes} (SYNNET_MAX_DECODED_BYTES_IN_FLIGHT)",
                    code="too_large",
                )
            if self.bytes_in_flight + nbytes > self.max_bytes:
                raise QueueFullError(
                    f"the service is busy: its images in progress hold {self.bytes_in_flight} of "
                    f"{self.max_bytes} decoded bytes, this request needs {nbytes} more; retry later",
                    retry_after_s=self.retry_after_s,
                )
        self.bytes_in_flight += nbytes
        try:
            yield
        finally:
            self.bytes_in_flight -= nbytes

    def begin_drain(self) -> None:
        """Admit nothing more; what holds a slot goes on."""
        self.draining = True

    def cut(self) -> int:
        """Cancel every request holding a slot (each answers 503 ``shutting_down``); returns how many."""
        for task in self._tasks - self._cut:
            self._cut.add(task)
            task.cancel()
        return len(self._cut)

    def _shutting_down(self, message: str) -> ShuttingDownError:
        return ShuttingDownError(message, retry_after_s=self.retry_after_s)

    def _change(self, delta: int) -> None:
        self.in_flight += delta
        if self._on_change is not None:
            self._on_change(self.in_flight)
