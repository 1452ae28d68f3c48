"""Admission control: at most N syntheses in the process at once; the next one gets a 503 at once.

Refusing early (with Retry-After) keeps memory bounded and latency honest under overload: a
client, or nginx in front of several replicas, can retry elsewhere instead of queueing without
limit behind work that may already be too late.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from service.errors import QueueFullError


class AdmissionGate:
    """A non-blocking counter of syntheses in flight."""

    def __init__(self, limit: int, retry_after_s: int, on_change: Callable[[int], None] | None = None) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self._on_change = on_change

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the body of the ``async with``.

        Raises:
            QueueFullError: when ``limit`` syntheses are already in flight.
        """
        if self.in_flight >= self.limit:
            raise QueueFullError(
                f"the service is busy: {self.in_flight} syntheses in progress (limit {self.limit}); retry later",
                retry_after_s=self.retry_after_s,
            )
        self._change(+1)
        try:
            yield
        finally:
            self._change(-1)

    def _change(self, delta: int) -> None:
        self.in_flight += delta
        if self._on_change is not None:
            self._on_change(self.in_flight)
