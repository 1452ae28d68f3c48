"""Memory-aware admission: the decoded bytes that uploads declare in their headers are budgeted,
as well as the number of requests; what does not fit now gets 503 + Retry-After, what could never
fit gets 413, both before any image is decoded."""

from __future__ import annotations

import asyncio
import gzip
import io
import time

import nibabel as nib
import numpy as np
import pytest
from hostile_corpus import bomb, corpus, declared_too_large
from hostile_corpus import nifti as hostile_nifti
from PIL import Image

from service.admission import AdmissionGate
from service.errors import QueueFullError
from synnet.errors import SynnetError
from synnet.imageio.read import declared_bytes
from synnet.modalities import Modality
from synnet.settings import Settings, default_decoded_budget

MB = 1_000_000


def nifti(shape: tuple[int, ...], dtype: type, compress: bool) -> bytes:
    raw = nib.Nifti1Image(np.zeros(shape, dtype), np.eye(4)).to_bytes()
    return gzip.compress(raw, compresslevel=1) if compress else raw


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(("shape", "dtype"), [((240, 240, 155), np.int16), ((64, 48), np.float64)])
def test_declared_bytes_of_a_nifti_is_its_data_plus_the_float32_image(shape, dtype, compress) -> None:
    voxels = int(np.prod(shape))
    assert declared_bytes(nifti(shape, dtype, compress)) == 352 + voxels * np.dtype(dtype).itemsize + 4 * voxels


@pytest.mark.parametrize(("mode", "dtype", "per_pixel"), [("L", np.uint8, 1), ("I;16", np.uint16, 2)])
def test_declared_bytes_of_a_png_is_its_pixels_plus_the_float32_image(mode, dtype, per_pixel) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((100, 80), dtype)).save(buffer, format="PNG")
    assert declared_bytes(buffer.getvalue()) == 100 * 80 * (per_pixel + 4)


def test_files_refused_from_their_header_declare_nothing() -> None:
    """The reader refuses them before they cost memory: they must not take budget (nor raise here)."""
    assert declared_bytes(bomb()) is None and declared_bytes(declared_too_large()) is None
    for case in corpus():  # never raises, whatever the header holds
        size = declared_bytes(case.data)
        assert size is None or 0 <= size <= 16 * 2**20 + 256 * 2**20 + 4 * 512 * 512 * 256, case.id


@pytest.mark.parametrize("code", [-1, 3, 44])
def test_a_datatype_code_nibabel_does_not_know_declares_nothing(code: int) -> None:
    """Found by test_fuzz_decoding: nibabel's KeyError here was a 500 before the reader could say 422."""
    data = hostile_nifti(fields={"datatype": code})
    assert declared_bytes(data) is None


@pytest.mark.anyio
async def test_the_gate_budgets_bytes_and_frees_them() -> None:
    gate = AdmissionGate(limit=4, retry_after_s=3, max_bytes=100)
    async with gate.slot(), gate.reserve(60):
        with pytest.raises(QueueFullError) as busy:
            async with gate.reserve(50):
                pass
        assert busy.value.retry_after_s == 3 and "60 of 100" in busy.value.detail
        async with gate.reserve(40):
            assert gate.bytes_in_flight == 100
    assert gate.bytes_in_flight == 0 and gate.in_flight == 0
    with pytest.raises(SynnetError) as never:
        async with gate.reserve(101):
            pass
    assert never.value.code == "too_large"
    async with gate.reserve(100):  # all freed
        pass


def volume_bytes(case, modality: Modality) -> bytes:
    image = nib.Nifti1Image(case[modality].array.astype(np.int16), case[modality].affine)
    return gzip.compress(image.to_bytes(), compresslevel=1)


@pytest.mark.anyio
async def test_a_second_volume_over_the_budget_waits_its_turn_with_503(serve, case) -> None:
    t1 = volume_bytes(case, Modality.T1)
    one = declared_bytes(t1)
    assert one is not None
    budget = one + one // 2  # one volume fits, two do not
    async with serve(max_decoded_bytes_in_flight=budget, retry_after_s=2) as (app, client):
        gate = app.state.runtime.admission
        files = {"T1": ("t1.nii.gz", t1)}
        first = asyncio.ensure_future(client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files=files))
        while gate.bytes_in_flight == 0:
            assert not first.done(), (await first).text
            await asyncio.sleep(0.005)
        began = time.perf_counter()
        second = await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files=files)
        print(f"refused by the decoded-bytes budget in {time.perf_counter() - began:.3f} s")
        assert second.status_code == 503 and second.headers["retry-after"] == "2"
        assert second.json()["error"] == "queue_full" and "decoded bytes" in second.json()["detail"]
        assert gate.in_flight == 1  # the refused request left its slot at once
        assert (await first).status_code == 200
        assert gate.bytes_in_flight == 0 and gate.in_flight == 0


@pytest.mark.anyio
async def test_a_request_declaring_more_than_the_whole_budget_is_413(serve, case) -> None:
    t1, truth = volume_bytes(case, Modality.T1), volume_bytes(case, Modality.T2)
    budget = declared_bytes(t1) + declared_bytes(truth) // 2  # the source fits, source and truth do not
    async with serve(max_decoded_bytes_in_flight=budget) as (_, client):
        files = {"T1": ("t1.nii.gz", t1), "truth_T2": ("t2.nii.gz", truth)}
        response = await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files=files)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "too_large" and "budget" in response.json()["detail"]


def test_the_default_budget_is_a_share_of_the_host() -> None:
    assert Settings().decoded_budget_bytes() == default_decoded_budget() >= 1024**3
    assert Settings(max_decoded_bytes_in_flight=5 * MB).decoded_budget_bytes() == 5 * MB
