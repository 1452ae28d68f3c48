"""The request pipeline (synnet.pipeline) stage by stage, on the session's models trained by training.fit:
the synchronous run with the store's forward and the asynchronous run with the service's batcher give
the same files; a given mask bounds the synthesis; PNG carries model space; bad inputs stop at their stage."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.batcher import Batcher
from synnet import routing
from synnet.errors import SynnetError
from synnet.imageio import read_image
from synnet.inference import synthesize, to_raw_units
from synnet.metrics import compute_metrics
from synnet.modalities import Modality
from synnet.normalization import brain_mask
from synnet.pipeline import ImageInput, Pipeline, SynthesisRequest, decode_inputs, run, run_async
from synnet.store import ModelStore

T1, T1c, T2, FLAIR = Modality.T1, Modality.T1c, Modality.T2, Modality.FLAIR
BATCH = 4


@pytest.fixture(scope="module")
def models(trained):
    return ModelStore.load(trained.store, "cpu")


def request_for(kit, case, src, dst, *, truths=(), mask=None, fmt=None) -> SynthesisRequest:
    def part(volume) -> ImageInput:
        return ImageInput(kit.nifti_bytes(volume.array, volume.affine), "part.nii.gz")

    return SynthesisRequest(
        src=src, dst=dst, sources={m: part(case[m]) for m in src}, truths={m: part(case[m]) for m in truths},
        mask=mask, format=fmt,
    )  # fmt: skip


def pipeline_for(models, request: SynthesisRequest) -> Pipeline:
    def route(r: SynthesisRequest) -> list[routing.Assignment]:
        return routing.plan(r.src, r.dst, models.manifests, models.evaluations)

    return Pipeline(request, route, batch_size=BATCH)


def forward_of(models):
    return lambda manifest: models.models[manifest.name].forward


async def run_with_batchers(models, pipeline: Pipeline):
    """The service's way: every model's batcher as the forward, the CPU stages in worker threads."""
    with ThreadPoolExecutor(1) as executor:
        batchers = {
            name: Batcher(name, model.forward, executor, max_batch_size=BATCH, max_delay_s=0.0)
            for name, model in models.models.items()
        }
        for batcher in batchers.values():
            batcher.start()
        try:
            return await run_async(pipeline, lambda m: batchers[m.name].submit, asyncio.to_thread)
        finally:
            for batcher in batchers.values():
                await batcher.stop()


def test_the_sync_and_the_async_run_give_the_same_files_as_the_volume_pipeline(models, small_case, kit) -> None:
    request = request_for(kit, small_case, (T1, T1c), (T2, FLAIR), truths=(FLAIR,))
    pipeline = pipeline_for(models, request)
    done = run(pipeline, forward_of(models))
    served = asyncio.run(run_with_batchers(models, pipeline))

    assert [(a.name, a.targets) for a in done.plan] == [("t1_to_t2", (T2,)), ("t1_t1c_to_flair", (FLAIR,))]
    assert list(done.targets) == [T2, FLAIR] == list(served.targets)
    for target, out in done.targets.items():
        assert out.file.payload == served.targets[target].file.payload
        assert out.metrics == served.targets[target].metrics
    # The stages are synnet.inference's volume pipeline: the same voxels, in raw units, in the source's space.
    sources = {m: small_case[m].array for m in (T1, T1c)}
    mask = brain_mask(list(sources.values()))
    model = models.models["t1_t1c_to_flair"]
    y, stats = synthesize(model.forward, sources, mask, model.manifest, batch_size=BATCH)
    flair = kit.read_nifti(done.targets[FLAIR].file.payload)
    np.testing.assert_array_equal(flair.get_fdata(dtype=np.float32), to_raw_units(y[0], mask, model.manifest, FLAIR))
    np.testing.assert_array_equal(flair.affine, small_case[T1].affine)
    assert done.targets[FLAIR].metrics == compute_metrics(y[0], small_case[FLAIR].array, mask, model.manifest)
    assert done.targets[T2].metrics is None and done.targets[FLAIR].stats == stats
    assert (stats.run, stats.skipped) == (20, 4)
    assert done.shape == (80, 80, 24) and done.meta.format == "nifti"


def test_a_given_mask_bounds_the_synthesis(models, small_case, kit) -> None:
    inside = brain_mask(small_case[T1].array)
    mask = inside.copy()
    mask[:, :40] = False  # half of the brain
    mask[..., 4:10] = False  # and no brain on six slices that hold some
    upload = ImageInput(kit.nifti_bytes(mask.astype(np.uint8), small_case[T1].affine, dtype=np.uint8), "mask.nii.gz")
    request = request_for(kit, small_case, (T1,), (T2,), mask=upload)
    decoded = decode_inputs(request)
    np.testing.assert_array_equal(decoded.mask, mask)

    out = run(pipeline_for(models, request), forward_of(models)).targets[T2]
    model = models.models["t1_to_t2"]
    y, stats = synthesize(model.forward, {T1: small_case[T1].array}, mask, model.manifest, batch_size=BATCH)
    synthetic = kit.read_nifti(out.file.payload).get_fdata(dtype=np.float32)
    np.testing.assert_array_equal(synthetic, to_raw_units(y[0], mask, model.manifest, T2))
    assert out.stats == stats and (stats.run, stats.skipped) == (14, 10)
    assert synthetic[inside & ~mask].max() == 0 and synthetic[mask].any()


def test_masks_that_cannot_be_used_are_refused_naming_the_mask(models, small_case, kit) -> None:
    affine = small_case[T1].affine
    cases = [
        (np.zeros((80, 80, 24)), affine, "empty_image", "no brain to synthesize: the uploaded mask is all zero"),
        (np.ones((80, 80, 20)), affine, "shape_mismatch", "mask has shape (80, 80, 20) but source T1 has shape"),
        (np.ones((80, 80, 24)), np.eye(4), "affine_mismatch", "mask and source T1 have the same shape but"),
    ]
    for array, mask_affine, code, words in cases:
        upload = ImageInput(kit.nifti_bytes(array, mask_affine, dtype=np.uint8), "mask.nii.gz")
        with pytest.raises(SynnetError) as raised:
            decode_inputs(request_for(kit, small_case, (T1,), (T2,), mask=upload))
        assert raised.value.code == code and words in str(raised.value)


def test_png_carries_model_space_on_the_grey_range(models, small_case, kit) -> None:
    z = 12
    model = models.models["t1_to_t2"]
    t1 = small_case[T1].array[:, :, z]
    for upload, bits in (
        (ImageInput(kit.png_bytes(t1), "t1.png"), 8),
        (ImageInput(kit.nifti_bytes(t1, small_case[T1].affine), "t1.nii.gz"), 16),
    ):
        request = SynthesisRequest(src=(T1,), dst=(T2,), sources={T1: upload}, format="png")
        out = run(pipeline_for(models, request), forward_of(models)).targets[T2]
        assert (out.format, out.filename, out.file.media_type) == ("png", "synthetic_T2.png", "image/png")
        assert out.shape == (80, 80)
        source, _ = read_image(upload.data, upload.label)
        mask = brain_mask(source)
        y, _ = synthesize(model.forward, {T1: source}, mask, model.manifest, batch_size=BATCH)
        pixels = kit.read_png(out.file.payload)
        np.testing.assert_array_equal(pixels, np.rint(y[0, :, :, 0].astype(np.float64) * ((1 << bits) - 1)))


def test_each_stage_refuses_what_it_cannot_use_before_any_forward(models, small_case, kit) -> None:
    calls = []

    def counted(manifest):
        forward = models.models[manifest.name].forward
        return lambda x: calls.append(len(x)) or forward(x)

    volume_as_png = request_for(kit, small_case, (T1,), (T2,), fmt="png")
    with pytest.raises(
        SynnetError, match=r"PNG output needs a 2D image, the input is a volume of shape \(80, 80, 24\)"
    ):
        run(pipeline_for(models, volume_as_png), counted)
    too_small = SynthesisRequest(src=(T1,), dst=(T2,), sources={T1: ImageInput(small_case[T1].array[34:46, 34:46, 12])})
    with pytest.raises(SynnetError, match=r"in-plane size \(12, 12\) is outside what model t1_to_t2 accepts") as raised:
        run(pipeline_for(models, too_small), counted)
    assert raised.value.code == "bad_dimensions"
    with pytest.raises(routing.NoModelError, match="no model synthesizes T1c"):
        run(pipeline_for(models, request_for(kit, small_case, (T1,), (T1c,))), counted)
    with pytest.raises(SynnetError, match=r"ground truth for T2 sent, but it is not a target \(dst=FLAIR\)"):
        request_for(kit, small_case, (T1, T1c), (FLAIR,), truths=(T2,))
    assert calls == []
    run(pipeline_for(models, request_for(kit, small_case, (T1,), (T2,))), counted)
    assert calls == [4, 4, 4, 4, 4]  # the 20 slices with brain, in chunks of the batch size
