"""Dynamic batching: concurrent requests for one model share forward passes.

A batcher is a queue of futures. Each request chunk — a few slices of the same shape, (n, C, H, W)
— is queued with its own future. One loop per model collects chunks of equal (C, H, W) into a
group until the group holds ``max_batch_size`` slices or its oldest chunk has waited
``max_delay_s`` (a monotonic deadline), then runs ONE forward pass on the concatenated group in
the inference worker thread and sets every chunk's future: results and exceptions alike, so no
caller waits forever. Grouping by shape (rather than padding) keeps a slice's output independent
of which other requests happen to share its batch.

Waking up is done with an :class:`asyncio.Event` over a deque rather than ``wait_for(queue.get())``:
cancelling the wait can then never lose a chunk.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import torch

from synnet.errors import SynnetError

logger = logging.getLogger(__name__)

Forward = Callable[[torch.Tensor], torch.Tensor]
BatchObserver = Callable[[int, int, float], None]  # (slices, chunks, seconds)


@dataclass(eq=False)  # found by identity: == would compare the tensors
class _Chunk:
    x: torch.Tensor  # (n, C, H, W)
    future: asyncio.Future[torch.Tensor]

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


@dataclass
class _Group:
    deadline: float
    chunks: list[_Chunk] = field(default_factory=list)
    slices: int = 0

    def add(self, chunk: _Chunk) -> None:
        self.chunks.append(chunk)
        self.slices += chunk.x.shape[0]


@dataclass
class BatcherStats:
    """Counters a test or a benchmark can read without parsing Prometheus text."""

    batches: int = 0
    slices: int = 0
    max_chunks_per_batch: int = 0


class Batcher:
    """Collects slices for one model and runs them in shared forward passes.

    Args:
        name: the model's name (for logs and metrics).
        forward: ``(B, C, H, W) -> (B, D, H, W)``, called in ``executor``; it must be safe to call
            from that thread (the model's forward enters ``torch.inference_mode`` there).
        executor: where forward passes run; one worker thread per device keeps them sequential.
        max_batch_size: most slices per forward pass.
        max_delay_s: longest a chunk waits for company before its group runs.
        observe: called after each forward with (slices, chunks, seconds), e.g. for Prometheus.
        on_queue_depth: called with the number of slices waiting whenever it changes.
    """

    def __init__(
        self,
        name: str,
        forward: Forward,
        executor: Executor,
        *,
        max_batch_size: int,
        max_delay_s: float,
        observe: BatchObserver | None = None,
        on_queue_depth: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.stats = BatcherStats()
        self._forward = forward
        self._executor = executor
        self._observe = observe
        self._on_queue_depth = on_queue_depth
        self._incoming: collections.deque[_Chunk] = collections.deque()
        self._groups: dict[tuple[int, ...], _Group] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiting_slices = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        """Stop the loop and fail whatever is still waiting (callers get a 503, not a hang)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        error = SynnetError("the service is shutting down", code="shutting_down")
        waiting = list(self._incoming) + [c for g in self._groups.values() for c in g.chunks]
        self._incoming.clear()
        self._groups.clear()
        for chunk in waiting:
            if not chunk.future.done():
                chunk.future.set_exception(error)
        self._set_depth(-self._waiting_slices)

    async def submit(self, x: torch.Tensor) -> torch.Tensor:
        """Queue ``x`` (n, C, H, W) with n <= max_batch_size and wait for its (n, D, H, W) output."""
        if x.dim() != 4 or not 1 <= x.shape[0] <= self.max_batch_size:
            raise ValueError(f"expected (n, C, H, W) with 1 <= n <= {self.max_batch_size}, got {tuple(x.shape)}")
        if self._task is None or self._task.done():
            raise SynnetError(f"model {self.name} is not accepting work", code="shutting_down")
        future: asyncio.Future[torch.Tensor] = asyncio.get_running_loop().create_future()
        chunk = _Chunk(x, future)
        # A caller that goes away (client disconnect, timeout, drain) cancels its future: its
        # slices leave the queue at once instead of running for nobody.
        future.add_done_callback(lambda f: self._discard(chunk) if f.cancelled() else None)
        self._incoming.append(chunk)
        self._set_depth(x.shape[0])
        self._wakeup.set()
        return await future

    def _discard(self, chunk: _Chunk) -> None:
        n = chunk.x.shape[0]
        try:
            self._incoming.remove(chunk)
        except ValueError:
            group = self._groups.get(chunk.key)
            if group is None or chunk not in group.chunks:
                return  # already taken into a forward pass, or failed by stop()
            group.chunks.remove(chunk)
            group.slices -= n
            if not group.chunks:
                del self._groups[chunk.key]
        self._set_depth(-n)

    def _set_depth(self, delta: int) -> None:
        self._waiting_slices += delta
        if self._on_queue_depth is not None:
            self._on_queue_depth(self._waiting_slices)

    async def _run(self) -> None:
        while True:
            await self._wait_for_work()
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must survive anything, or every later caller would hang
                logger.exception("batcher %s: unexpected error; failing the affected chunks", self.name)

    async def _wait_for_work(self) -> None:
        if self._incoming:
            return
        if not self._groups:
            await self._wakeup.wait()
        else:
            remaining = min(g.deadline for g in self._groups.values()) - time.monotonic()
            if remaining > 0:
                try:
                    async with asyncio.timeout(remaining):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
        self._wakeup.clear()

    async def _step(self) -> None:
        while self._incoming:
            chunk = self._incoming.popleft()
            if chunk.future.done():  # cancelled before its discard callback ran
                self._set_depth(-chunk.x.shape[0])
                continue
            group = self._groups.get(chunk.key)
            if group is not None and group.slices + chunk.x.shape[0] > self.max_batch_size:
                await self._flush(self._groups.pop(chunk.key))
                group = None
            if group is None:
                group = self._groups[chunk.key] = _Group(deadline=time.monotonic() + self.max_delay_s)
            group.add(chunk)
            if group.slices >= self.max_batch_size:
                await self._flush(self._groups.pop(chunk.key))
        now = time.monotonic()
        for key in [k for k, g in self._groups.items() if g.deadline <= now]:
            await self._flush(self._groups.pop(key))

    async def _flush(self, group: _Group) -> None:
        self._set_depth(-group.slices)
        live = [c for c in group.chunks if not c.future.done()]
        if not live:
            return
        batch = live[0].x if len(live) == 1 else torch.cat([c.x for c in live])
        started = time.perf_counter()
        try:
            output = await asyncio.get_running_loop().run_in_executor(self._executor, self._forward, batch)
            if output.shape[0] != batch.shape[0]:
                raise RuntimeError(
                    f"model {self.name} returned {output.shape[0]} slices for a batch of {batch.shape[0]}"
                )
        except Exception as exc:
            logger.error("batcher %s: forward of %d slices failed: %r", self.name, batch.shape[0], exc)
            for chunk in live:
                if not chunk.future.done():
                    chunk.future.set_exception(exc)
            return
        seconds = time.perf_counter() - started
        self.stats.batches += 1
        self.stats.slices += batch.shape[0]
        self.stats.max_chunks_per_batch = max(self.stats.max_chunks_per_batch, len(live))
        if self._observe is not None:
            self._observe(batch.shape[0], len(live), seconds)
        start = 0
        for chunk in live:
            n = chunk.x.shape[0]
            if not chunk.future.done():
                chunk.future.set_result(output[start : start + n])
            start += n
