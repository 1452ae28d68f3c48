"""POST /synthesize through httpx's ASGITransport, on models trained by training.fit."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import shutil

import numpy as np
import pytest

from float_tolerance import assert_close_but_for_pool_flips, assert_slices_close
from synnet.evaluation import EvaluationRecord
from synnet.imageio import read_image
from synnet.metrics import evaluate
from synnet.modalities import Modality
from synnet.normalization import brain_mask, normalize

pytestmark = pytest.mark.anyio
T1, T1c, T2, FLAIR = Modality.T1, Modality.T1c, Modality.T2, Modality.FLAIR


def nifti_part(kit, volume, name: str = "image.nii.gz", **kw) -> tuple[str, bytes]:
    return name, kit.nifti_bytes(volume.array, volume.affine, **kw)


def decode(kit, target: dict) -> np.ndarray:
    data = base64.b64decode(target["data"])
    if target["format"] == "nifti":
        return kit.read_nifti(data).get_fdata(dtype=np.float32)
    if target["format"] == "png":
        return kit.read_png(data)
    return np.load(io.BytesIO(data))


def to_model_space(raw: np.ndarray, mask: np.ndarray, manifest, target: Modality) -> np.ndarray:
    ref = manifest.output_reference[target]
    return np.where(mask, (raw - ref.lo) / (ref.hi - ref.lo), 0.0).astype(np.float32)


@pytest.mark.parametrize("crop", [True, False])
async def test_served_volume_equals_eager_output_of_the_exported_model(serve, trained, small_case, kit, crop) -> None:
    async with serve(crop_to_brain=crop) as (_, client):
        response = await client.post(
            "/synthesize", params={"src": "T1", "dst": "T2"}, files={"T1": nifti_part(kit, small_case[T1])}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["models"] == [{"name": "t1_to_t2", "src": ["T1"], "dst": ["T2"], "targets": ["T2"], "exact": True}]
    assert body["input"] == {"format": "nifti", "shape": [80, 80, 24]}
    target = body["targets"]["T2"]
    assert target["shape"] == [80, 80, 24] and target["metrics"] is None
    assert (target["slices_run"], target["slices_skipped"]) == (20, 4)
    served = decode(kit, target)
    expected = kit.eager_synthesis(
        trained.module("t1_to_t2"), trained.manifest("t1_to_t2"), {T1: small_case[T1].array}, crop=crop
    )[0]
    assert_slices_close(served, expected, brain_mask(small_case[T1].array))
    assert not served[..., :4].any()  # slices without brain stay empty


async def test_cropping_to_the_brain_barely_changes_the_result(trained, small_case, kit) -> None:
    module, manifest = trained.module("t1_to_t2"), trained.manifest("t1_to_t2")
    sources = {T1: small_case[T1].array}
    cropped = kit.eager_synthesis(module, manifest, sources, crop=True, model_space=True)[0]
    whole = kit.eager_synthesis(module, manifest, sources, crop=False, model_space=True)[0]
    inside = brain_mask(small_case[T1].array)
    assert np.abs(cropped - whole)[inside].mean() < 1e-3


async def test_nifti_round_trip_keeps_affine_and_header(serve, small_case, kit) -> None:
    source = small_case[T1]
    async with serve() as (_, client):
        for compress, suffix in ((True, ".nii.gz"), (False, ".nii")):
            part = nifti_part(kit, source, f"t1{suffix}", compress=compress)
            response = await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files={"T1": part})
            target = response.json()["targets"]["T2"]
            assert target["filename"] == f"synthetic_T2{suffix}"
            image = kit.read_nifti(base64.b64decode(target["data"]))
            np.testing.assert_allclose(image.affine, source.affine, atol=1e-6)
            assert image.shape == source.array.shape and image.get_data_dtype() == np.float32
            assert b"synthetic T2" in image.header["descrip"].item()
            assert np.allclose(image.header.get_zooms(), (3.0, 3.0, 1.0))


async def test_metrics_equal_the_metrics_module_on_the_same_arrays(serve, trained, small_case, kit) -> None:
    files = {"T1": nifti_part(kit, small_case[T1]), "truth_T2": nifti_part(kit, small_case[T2])}
    async with serve() as (_, client):
        body = (await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files=files)).json()
    metrics = body["targets"]["T2"]["metrics"]
    manifest = trained.manifest("t1_to_t2")
    mask = brain_mask(small_case[T1].array)
    predicted = to_model_space(decode(kit, body["targets"]["T2"]), mask, manifest, T2)
    truth, _ = normalize(small_case[T2].array, mask, manifest.normalization)
    expected = evaluate(predicted, truth, mask).model_dump(mode="json")
    assert metrics["identical"] is False
    for key in ("psnr", "ssim", "psnr_brain", "ssim_brain"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5), key


async def test_download_returns_the_file_with_metrics_in_headers(serve, small_case, kit) -> None:
    files = {"T1": nifti_part(kit, small_case[T1]), "truth_T2": nifti_part(kit, small_case[T2])}
    params = {"src": "T1", "dst": "T2"}
    async with serve() as (_, client):
        as_json = (await client.post("/synthesize", params=params, files=files)).json()["targets"]["T2"]
        by_query = await client.post("/synthesize", params={**params, "download": "1"}, files=files)
        by_accept = await client.post(
            "/synthesize", params=params, files=files, headers={"Accept": "application/octet-stream"}
        )
    for response in (by_query, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/gzip"
        assert response.headers["content-disposition"] == 'attachment; filename="synthetic_T2.nii.gz"'
        assert response.headers["x-synnet-model"] == "t1_to_t2" and response.headers["x-synnet-shape"] == "80,80,24"
        assert response.content == base64.b64decode(as_json["data"])
        assert float(response.headers["x-synnet-psnr"]) == pytest.approx(as_json["metrics"]["psnr"], abs=1e-5)
        assert float(response.headers["x-synnet-ssim-brain"]) == pytest.approx(as_json["metrics"]["ssim_brain"])
        assert response.headers["x-synnet-identical"] == "false"


@pytest.mark.parametrize("bits", [8, 16])
async def test_png_in_png_out_with_the_input_bit_depth(serve, trained, case, kit, bits) -> None:
    image = case[T1].array[:, :, 77]
    async with serve() as (_, client):
        response = await client.post(
            "/synthesize", params={"src": "T1", "dst": "T2"}, files={"T1": ("t1.png", kit.png_bytes(image, bits))}
        )
    assert response.status_code == 200, response.text
    target = response.json()["targets"]["T2"]
    assert target["format"] == "png" and target["media_type"] == "image/png" and target["shape"] == [240, 240]
    pixels = decode(kit, target)
    assert pixels.dtype == (np.uint8 if bits == 8 else np.uint16)
    # The service read the PNG as the model sees it: feed the same decoded pixels to the eager model.
    decoded, _ = read_image(kit.png_bytes(image, bits), "t1.png")
    expected = kit.eager_synthesis(
        trained.module("t1_to_t2"), trained.manifest("t1_to_t2"), {T1: decoded}, crop=True, model_space=True
    )[0]
    top = (1 << bits) - 1
    assert np.abs(pixels.astype(np.float64) - np.rint(expected * top)).max() <= 1


async def test_format_override(serve, case, small_case, kit) -> None:
    params = {"src": "T1", "dst": "T2"}
    async with serve() as (_, client):
        files = {"T1": nifti_part(kit, small_case[T1])}
        nifti = (await client.post("/synthesize", params=params, files=files)).json()
        npy = (await client.post("/synthesize", params={**params, "format": "npy"}, files=files)).json()
        png_as_nifti = (
            await client.post(
                "/synthesize", params={**params, "format": "nifti"},
                files={"T1": ("t1.png", kit.png_bytes(case[T1].array[:, :, 77]))},
            )
        ).json()
    assert npy["targets"]["T2"]["filename"] == "synthetic_T2.npy"
    np.testing.assert_array_equal(decode(kit, npy["targets"]["T2"]), decode(kit, nifti["targets"]["T2"]))
    image = kit.read_nifti(base64.b64decode(png_as_nifti["targets"]["T2"]["data"]))
    assert image.shape == (240, 240) and np.allclose(image.affine, np.eye(4))


async def test_fallback_and_several_models_in_one_request(serve, trained, small_case, kit) -> None:
    files = {"T1": nifti_part(kit, small_case[T1]), "T1c": nifti_part(kit, small_case[T1c])}
    async with serve() as (_, client):
        both = await client.post("/synthesize", params={"src": "T1,T1c", "dst": "T2,FLAIR"}, files=files)
        subset = await client.post("/synthesize", params={"src": "T1,T1c", "dst": "T2"}, files=files)
    assert both.status_code == 200, both.text
    body = both.json()
    assert [(m["name"], m["targets"], m["exact"]) for m in body["models"]] == [
        ("t1_to_t2", ["T2"], False),
        ("t1_t1c_to_flair", ["FLAIR"], False),
    ]
    sources = {T1: small_case[T1].array, T1c: small_case[T1c].array}
    mask = brain_mask(list(sources.values()))  # every source sent outlines the brain
    for name, target in (("t1_to_t2", "T2"), ("t1_t1c_to_flair", "FLAIR")):
        module, manifest = trained.module(name), trained.manifest(name)
        expected = kit.eager_synthesis(module, manifest, sources, crop=True, mask=mask)[0]
        assert body["targets"][target]["model"] == name
        assert_slices_close(decode(kit, body["targets"][target]), expected, mask)
    assert [m["name"] for m in subset.json()["models"]] == ["t1_to_t2"]
    assert subset.json()["models"][0]["exact"] is False


async def test_unservable_configuration_is_404_listing_what_is_available(serve, small_case, kit) -> None:
    async with serve() as (_, client):
        response = await client.post(
            "/synthesize", params={"src": "T1", "dst": "FLAIR"}, files={"T1": nifti_part(kit, small_case[T1])}
        )
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "no_model"
    assert body["available"] == ["T1,T1c->FLAIR", "T1->T2"]
    assert "T1,T1c->FLAIR" in body["detail"] and "T1->T2" in body["detail"]


async def test_aliases_and_sources_inferred_from_the_parts(serve, small_case, kit) -> None:
    files = {"t1n": nifti_part(kit, small_case[T1]), "truth_t2w": nifti_part(kit, small_case[T2])}
    async with serve() as (_, client):
        response = await client.post("/synthesize", params={"dst": "t2w"}, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["src"] == ["T1"] and body["dst"] == ["T2"] and body["targets"]["T2"]["metrics"] is not None


async def test_uploaded_mask_limits_the_output(serve, trained, small_case, kit) -> None:
    mask = np.zeros(small_case[T1].array.shape, np.uint8)
    mask[20:60, 20:60, 10:20] = 1
    files = {
        "T1": nifti_part(kit, small_case[T1]),
        "mask": ("mask.nii.gz", kit.nifti_bytes(mask, small_case[T1].affine, dtype=np.uint8)),
    }
    async with serve() as (_, client):
        body = (await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files=files)).json()
    served = decode(kit, body["targets"]["T2"])
    assert body["targets"]["T2"]["slices_run"] == 10
    # The uploaded mask is the brain: normalization inside it, the box around it, zeros outside it.
    inside = mask.astype(bool)
    expected = kit.eager_synthesis(
        trained.module("t1_to_t2"), trained.manifest("t1_to_t2"), {T1: small_case[T1].array}, crop=True, mask=inside
    )[0]
    assert_slices_close(served, expected, inside)
    own_mask = kit.eager_synthesis(
        trained.module("t1_to_t2"), trained.manifest("t1_to_t2"), {T1: small_case[T1].array}, crop=True
    )[0]
    assert not np.allclose(served[inside], own_mask[inside], atol=1e-3)  # not the sources' own brain outline


async def test_two_concurrent_requests_share_a_batch_and_match_separate_runs(serve, case, kit) -> None:
    first = case[T1].array[:, :, 77]
    second = np.where(first > 0, first.max() * (first / first.max()) ** 2 + 1, 0)  # same brain, other contrast
    uploads = [kit.png_bytes(first, 16), kit.png_bytes(second, 16)]

    async def post(client, data: bytes) -> np.ndarray:
        response = await client.post(
            "/synthesize", params={"src": "T1", "dst": "T2", "format": "npy"}, files={"T1": ("t1.png", data)}
        )
        assert response.status_code == 200, response.text
        return decode(kit, response.json()["targets"]["T2"])

    async with serve(max_batch_size=4, max_batch_delay_s=0.5) as (app, client):
        batcher = app.state.runtime.batchers["t1_to_t2"]
        alone = [await post(client, data) for data in uploads]
        assert batcher.stats.max_chunks_per_batch == 1
        together = await asyncio.gather(*(post(client, data) for data in uploads))
        assert batcher.stats.max_chunks_per_batch == 2  # both requests went through one forward
        metrics = (await client.get("/metrics")).text
    assert re.search(r'^synnet_batch_chunks_bucket\{le="2.0",model="t1_to_t2"\} 3.0$', metrics, re.MULTILINE)
    assert not np.array_equal(alone[0], alone[1])
    for single, shared in zip(alone, together, strict=True):
        assert_close_but_for_pool_flips(shared, single)  # batch 2 vs 1: other kernels


async def test_models_metrics_and_openapi(serve, store, small_case, kit, tmp_path) -> None:
    scored = tmp_path / "store"
    shutil.copytree(store, scored)
    scores = {"T2": {"psnr": 21.5, "ssim_brain": 0.61}}
    EvaluationRecord(targets=scores, data={"cases": ["held_out_1"]}).save(scored / "t1_to_t2")
    async with serve(model_store=scored) as (_, client):
        files = {"T1": nifti_part(kit, small_case[T1])}
        await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files=files)
        models = (await client.get("/models")).json()
        metrics = (await client.get("/metrics")).text
        spec = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert models["configurations"] == ["T1,T1c->FLAIR", "T1->T2"] and models["unavailable"] == []
    first = models["models"][0]
    assert first["name"] in ("t1_to_t2", "t1_t1c_to_flair") and "model_file" not in first and "sha256" in first
    by_name = {m["name"]: m for m in models["models"]}  # held-out scores from evaluation.json, as before schema 2
    assert by_name["t1_to_t2"]["evaluation"]["T2"]["psnr"] == 21.5
    assert by_name["t1_to_t2"]["evaluation_data"] == {"cases": ["held_out_1"]}
    assert by_name["t1_t1c_to_flair"]["evaluation"] == {}
    for series in (
        'synnet_http_requests_total{method="POST",route="/synthesize",status="200"} 1.0',
        'synnet_http_request_duration_seconds_count{method="POST",route="/synthesize"} 1.0',
        'synnet_batch_size_count{model="t1_to_t2"}',
        'synnet_queue_depth{model="t1_to_t2"} 0.0',
        'synnet_inference_seconds_count{model="t1_to_t2"}',
        'synnet_slices_total{model="t1_to_t2",outcome="skipped"} 4.0',
    ):
        assert series in metrics, series
    ok = spec["paths"]["/synthesize"]["post"]["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "application/octet-stream"}
    assert ok["content"]["application/json"]["example"]["targets"]["T2"]["format"] == "nifti"
    assert "X-Synnet-PSNR" in ok["headers"]
    assert "multipart/form-data" in spec["paths"]["/synthesize"]["post"]["requestBody"]["content"]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
