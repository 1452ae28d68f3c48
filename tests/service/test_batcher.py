"""The dynamic batcher: shared forwards, flush by size or deadline, shapes kept apart, errors delivered."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from float_tolerance import assert_close_to_scale
from service.batcher import Batcher
from synnet.errors import SynnetError
from synnet.store import LoadedModel

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def model(trained) -> LoadedModel:
    return LoadedModel(trained.manifest("t1_to_t2"), trained.module("t1_to_t2"), torch.device("cpu"))


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def slices(n: int, size: tuple[int, int] = (32, 40), seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, *size, generator=torch.Generator().manual_seed(seed))


async def test_concurrent_chunks_share_forwards_and_get_their_own_outputs(model, executor) -> None:
    batcher = Batcher("m", model.forward, executor, max_batch_size=4, max_delay_s=0.2)
    batcher.start()
    inputs = [slices(1, seed=0), slices(2, seed=1), slices(1, seed=2), slices(3, seed=3)]
    try:
        outputs = await asyncio.gather(*(batcher.submit(x) for x in inputs))
    finally:
        await batcher.stop()
    # 1 + 2 + 1 = 4 slices filled the first batch; the 3-slice chunk waited for its deadline.
    assert batcher.stats.batches == 2 and batcher.stats.slices == 7
    assert batcher.stats.max_chunks_per_batch == 3
    # Each chunk gets its own rows of the forward it shared. The reference runs the same batches, so the same
    # kernels: on another batch size a max-pool index can flip, and one flip moved 5 % of a 32 x 40 slice on
    # an AMX Xeon, more than tests/float_tolerance.py allows.
    shared = model.forward(torch.cat(inputs[:3])).split([len(x) for x in inputs[:3]])
    for y, expected in zip(outputs, [*shared, model.forward(inputs[3])], strict=True):
        assert_close_to_scale(y, expected)


async def test_full_batch_runs_without_waiting_for_the_deadline(model, executor) -> None:
    batcher = Batcher("m", model.forward, executor, max_batch_size=4, max_delay_s=30.0)
    batcher.start()
    started = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.gather(*(batcher.submit(slices(1, seed=i)) for i in range(4))), timeout=10)
    finally:
        await batcher.stop()
    assert time.monotonic() - started < 10 and batcher.stats.batches == 1


async def test_a_lone_chunk_runs_at_its_deadline(model, executor) -> None:
    batcher = Batcher("m", model.forward, executor, max_batch_size=4, max_delay_s=0.15)
    batcher.start()
    started = time.monotonic()
    try:
        await batcher.submit(slices(1))
    finally:
        await batcher.stop()
    assert 0.15 <= time.monotonic() - started < 5


async def test_different_shapes_are_never_mixed(model, executor) -> None:
    seen: list[tuple[int, ...]] = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return model.forward(x)

    batcher = Batcher("m", forward, executor, max_batch_size=8, max_delay_s=0.1)
    batcher.start()
    a, b, c = slices(2, (32, 40), 0), slices(1, (48, 32), 1), slices(2, (32, 40), 2)
    try:
        ya, yb, yc = await asyncio.gather(batcher.submit(a), batcher.submit(b), batcher.submit(c))
    finally:
        await batcher.stop()
    assert sorted(seen) == [(1, 1, 48, 32), (4, 1, 32, 40)]
    ya_expected, yc_expected = model.forward(torch.cat([a, c])).split([2, 2])  # the batch a and c shared
    for y, expected in ((ya, ya_expected), (yb, model.forward(b)), (yc, yc_expected)):
        assert_close_to_scale(y, expected)


async def test_an_exception_reaches_every_waiter_and_the_batcher_survives(model, executor) -> None:
    calls = 0

    def flaky(x: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("device lost")
        return model.forward(x)

    batcher = Batcher("m", flaky, executor, max_batch_size=4, max_delay_s=0.1)
    batcher.start()
    try:
        results = await asyncio.gather(batcher.submit(slices(1)), batcher.submit(slices(2)), return_exceptions=True)
        assert [str(r) for r in results] == ["device lost", "device lost"]
        assert (await batcher.submit(slices(1))).shape == (1, 1, 32, 40)
    finally:
        await batcher.stop()


async def test_a_cancelled_chunk_is_left_out_of_its_batch(model, executor) -> None:
    sizes: list[int] = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        sizes.append(x.shape[0])
        return model.forward(x)

    batcher = Batcher("m", forward, executor, max_batch_size=8, max_delay_s=0.3)
    batcher.start()
    try:
        kept = asyncio.ensure_future(batcher.submit(slices(2)))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.submit(slices(3)), timeout=0.05)
        assert (await kept).shape[0] == 2
    finally:
        await batcher.stop()
    assert sizes == [2]


async def test_stop_fails_waiting_callers_instead_of_leaving_them_hanging(model, executor) -> None:
    batcher = Batcher("m", model.forward, executor, max_batch_size=4, max_delay_s=30.0)
    batcher.start()
    waiting = asyncio.ensure_future(batcher.submit(slices(1)))
    await asyncio.sleep(0.05)
    await batcher.stop()
    with pytest.raises(SynnetError, match="shutting down"):
        await waiting
    with pytest.raises(SynnetError, match="not accepting work"):
        await batcher.submit(slices(1))


async def test_chunk_larger_than_a_batch_is_refused(model, executor) -> None:
    batcher = Batcher("m", model.forward, executor, max_batch_size=2, max_delay_s=0.0)
    batcher.start()
    try:
        with pytest.raises(ValueError, match="1 <= n <= 2"):
            await batcher.submit(slices(3))
    finally:
        await batcher.stop()
