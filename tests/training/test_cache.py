"""The training cache: fingerprints, resume, bad cases, a brain-mask file, and items equal to the in-memory path."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from synnet.modalities import Modality
from synnet.normalization import NormalizationParams
from training.data.brats import find_cases, load_case
from training.data.cache import CachedCase, CacheSettings, cache_root, prepare_cache
from training.data.cache.entry import IMAGES, RECORD, CaseRecord, read_record
from training.data.dataset import SliceDataset
from training.data.errors import DataError
from training.data.slices import extract_available_slices, extract_slices
from training.data.streaming import SliceView, StreamedSliceDataset, ViewedCase, validation_stacks

REPO = Path(__file__).resolve().parents[2]
EVERY = tuple(Modality)


@pytest.fixture(scope="module")
def prepared(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cache") / "phantoms"
    prepare_cache(find_cases(phantom_root), root, workers=2, progress=False)
    return root


def _viewed(root: Path, view: SliceView) -> list[ViewedCase]:
    return [
        ViewedCase(CachedCase(folder, _record(folder)), view) for folder in sorted(root.iterdir()) if _is_entry(folder)
    ]


def _record(folder: Path) -> CaseRecord:
    record = read_record(folder)
    assert record is not None
    return record


def _is_entry(folder: Path) -> bool:
    return folder.is_dir() and (folder / RECORD).exists()


def _batches(dataset, seed: int = 5) -> list[tuple[torch.Tensor, ...]]:
    sampler = DistributedSampler(dataset, num_replicas=2, rank=1, shuffle=True, seed=seed)
    sampler.set_epoch(1)
    dataset.set_epoch(1)
    return list(DataLoader(dataset, batch_size=4, sampler=sampler))[:12]


def _assert_same_batches(memory, streamed) -> None:
    assert len(memory) == len(streamed) and memory.case_ids == streamed.case_ids
    for old, new in zip(_batches(memory), _batches(streamed), strict=True):
        for a, b in zip(old, new, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert torch.equal(torch.nan_to_num(a, nan=-7.0), torch.nan_to_num(b, nan=-7.0))


@pytest.mark.parametrize(
    ("src", "dst", "context", "anchor", "tumour"),
    [
        (("T1",), ("T2",), 0, "percentile", False),
        (("T1", "T1c"), ("T2", "FLAIR"), 1, "median", True),
        (("FLAIR",), ("T1c",), 0, "percentile", True),
    ],
)
def test_streamed_batches_equal_the_in_memory_path(phantom_root, prepared, src, dst, context, anchor, tumour) -> None:
    """Same seed, same sampler: the cache gives the very batches the in-memory slices give, to the last bit."""
    params = NormalizationParams(target_anchor=anchor)
    cases = find_cases(phantom_root)
    stacks = [
        extract_slices(load_case(c, (*src, *dst), load_seg=tumour), src, dst, params, 0.05, context) for c in cases
    ]
    view = SliceView(
        tuple(map(Modality, src)), tuple(map(Modality, dst)), params=params, context=context, tumour=tumour
    )
    viewed = _viewed(prepared, view)
    _assert_same_batches(SliceDataset(stacks, window=72, seed=3), StreamedSliceDataset(viewed, window=72, seed=3))
    _assert_same_batches(SliceDataset(stacks), StreamedSliceDataset(viewed, memory_bytes=2**20))  # whole slices


def test_streamed_batches_of_the_unified_model_equal_the_in_memory_path(phantom_root, prepared, tmp_path) -> None:
    """All four channels, NaN where a case lacks a modality (one case here lacks T2 and T1c)."""
    partial = tmp_path / "partial"
    shutil.copytree(phantom_root, partial)
    removed = [*partial.glob("*00001/*_t2.nii.gz"), *partial.glob("*00001/*_t1ce.nii.gz")]
    assert len(removed) == 2
    for path in removed:
        path.unlink()
    cases = find_cases(partial)
    stacks = [extract_available_slices(load_case(c, list(c.files), load_seg=True)) for c in cases]
    root = tmp_path / "cache"
    prepare_cache(cases, root, workers=2, progress=False)
    viewed = _viewed(root, SliceView(EVERY, EVERY, any_to_any=True, tumour=True))
    whole = StreamedSliceDataset(viewed)
    assert any(torch.isnan(whole[i][0]).any() for i in range(0, len(whole), 25))
    _assert_same_batches(SliceDataset(stacks, window=64, seed=1), StreamedSliceDataset(viewed, window=64, seed=1))


def test_a_changed_file_or_setting_redoes_exactly_what_changed(phantom_root: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(phantom_root, data)
    cases, root = find_cases(data), tmp_path / "cache"
    first = prepare_cache(cases, root, workers=2, progress=False)
    assert (first.written, first.reused) == (3, 0)
    unchanged = {c.case_id: (root / c.case_id / IMAGES).stat().st_mtime_ns for c in cases}

    again = prepare_cache(find_cases(data), root, progress=False)
    assert (again.written, again.reused) == (0, 3)

    t2 = next((data / cases[1].case_id).glob("*_t2.nii.gz"))
    image = nib.load(t2)
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj) + 1, image.affine, image.header), t2)
    changed = prepare_cache(find_cases(data), root, progress=False)
    assert (changed.written, changed.reused) == (1, 2)
    rewritten = [c.case_id for c in cases if (root / c.case_id / IMAGES).stat().st_mtime_ns != unchanged[c.case_id]]
    assert rewritten == [cases[1].case_id]
    assert changed.entries[cases[1].case_id].fingerprint != first.entries[cases[1].case_id].fingerprint

    other = prepare_cache(find_cases(data), root, CacheSettings(lower_percentile=1.0), workers=2, progress=False)
    assert (other.written, other.reused) == (3, 0)


def test_an_interrupted_preparation_resumes_and_ends_as_a_clean_one(phantom_root: Path, tmp_path: Path) -> None:
    """Killed mid-way (SIGKILL: nothing gets to clean up), a second run keeps what was done and does the rest."""
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "training.prepare", "--data", str(phantom_root), "--cache-dir", str(cache),
               "--workers", "1"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    root = cache_root(cache, phantom_root)
    deadline = time.monotonic() + 120
    while not list(root.glob(f"[!.]*/{RECORD}")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = sorted(path.parent.name for path in root.glob(f"[!.]*/{RECORD}"))
    assert 1 <= len(done_before) < 3, "the kill came too late to interrupt anything"

    resumed = prepare_cache(find_cases(phantom_root), root, workers=2, progress=False)
    assert resumed.reused == len(done_before) and resumed.written == 3 - len(done_before)
    assert not [p.name for p in root.iterdir() if p.name.startswith(".staging") or p.name.startswith(".retired")]
    clean = prepare_cache(find_cases(phantom_root), tmp_path / "clean", workers=2, progress=False)
    for case_id, record in clean.entries.items():
        assert resumed.entries[case_id].model_dump(exclude={"fingerprint"}) == record.model_dump(
            exclude={"fingerprint"}
        )
        assert np.array_equal(np.load(root / case_id / IMAGES), np.load(tmp_path / "clean" / case_id / IMAGES))


def test_a_corrupt_case_is_reported_by_name_and_skipped(phantom_root: Path, tmp_path: Path, caplog) -> None:
    data = tmp_path / "data"
    shutil.copytree(phantom_root, data)
    broken = find_cases(data)[2]
    flair = broken.files[Modality.FLAIR]
    flair.write_bytes(gzip.compress(flair.read_bytes()[:2000])[:3000])  # a truncated download
    root = tmp_path / "cache"
    with caplog.at_level("WARNING"):
        summary = prepare_cache(find_cases(data), root, workers=2, progress=False)
    assert sorted(summary.entries) == sorted(c.case_id for c in find_cases(data) if c.case_id != broken.case_id)
    assert list(summary.failed) == [broken.case_id] and broken.case_id in summary.describe()
    assert any(broken.case_id in record.getMessage() for record in caplog.records)

    again = prepare_cache(find_cases(data), root, progress=False)  # the unchanged broken case is not decoded again
    assert (again.written, list(again.failed)) == (0, [broken.case_id])
    with pytest.raises(DataError, match=broken.case_id) as error:
        prepare_cache(find_cases(data), root, strict=True, progress=False)
    assert error.value.code == "bad_case"


def test_a_brain_mask_file_is_the_brain_for_z_scored_data(tmp_path: Path) -> None:
    """Normalized data with a constant negative background: the brain is the mask, not the nonzero voxels."""
    rng = np.random.default_rng(0)
    shape = (48, 40, 12)
    brain = np.zeros(shape, dtype=bool)
    brain[10:38, 8:30, 2:10] = True
    folder = tmp_path / "data" / "Zcase"
    folder.mkdir(parents=True)
    for token in ("flair", "t1ce"):
        values = np.where(brain, rng.normal(size=shape), -3.1).astype(np.float32)
        nib.save(nib.Nifti1Image(values, np.eye(4)), folder / f"Zcase_{token}.nii.gz")
    nib.save(nib.Nifti1Image(brain.astype(np.float64) * 0.99999997, np.eye(4)), folder / "Zcase_brainmask.nii.gz")
    root = tmp_path / "cache"
    summary = prepare_cache(find_cases(tmp_path / "data"), root, progress=False)
    record = summary.entries["Zcase"]
    assert record.brain_from_file and record.image_dtype == "float32" and record.box == (10, 38, 8, 30, 2, 10)
    viewed = ViewedCase(CachedCase(root / "Zcase", record), SliceView((Modality.FLAIR,), (Modality.T1c,)))
    stack = next(validation_stacks([viewed], max_slices=100, seed=0))
    assert np.array_equal(stack.masks, np.moveaxis(brain[:, :, stack.slice_indices], -1, 0))
    assert stack.sources[:, :, ~brain[:, :, 5]].max() == 0 and stack.sources[:, 0][stack.masks].std() > 0.1


def test_integer_data_is_stored_as_int16_and_read_back_exactly(prepared: Path, phantom_root: Path) -> None:
    case = find_cases(phantom_root)[0]
    record = _record(prepared / case.case_id)
    images = np.load(prepared / case.case_id / IMAGES)
    t2 = load_case(case, [Modality.T2]).images[Modality.T2]
    x0, x1, y0, y1, z0, z1 = record.box
    assert record.image_dtype == "int16" and images.dtype == np.int16
    assert np.array_equal(
        np.moveaxis(images[:, record.channel(Modality.T2)], 0, -1).astype(np.float32), t2[x0:x1, y0:y1, z0:z1]
    )
    assert not t2[:x0].any() and not t2[x1:].any() and not t2[:, :, z1:].any()  # the crop drops only zeros


def test_validation_reads_a_bounded_seeded_choice_one_case_at_a_time(prepared: Path) -> None:
    viewed = _viewed(prepared, SliceView((Modality.T1,), (Modality.T2,)))
    total = sum(map(len, viewed))
    stream = validation_stacks(viewed, max_slices=20, seed=4)
    first = next(stream)  # a generator: the next case is not read before it is asked for
    chosen = [first, *stream]
    assert sum(map(len, chosen)) == 20 < total
    assert [(s.case_id, list(s.slice_indices)) for s in chosen] == [
        (s.case_id, list(s.slice_indices)) for s in validation_stacks(viewed, max_slices=20, seed=4)
    ]
    assert sum(map(len, validation_stacks(viewed, max_slices=10**6, seed=4))) == total


def _prepare_in_a_process(cases, root: Path, queue) -> None:
    summary = prepare_cache(cases, root, workers=1, progress=False)
    queue.put((summary.written, summary.reused))


def test_processes_sharing_a_node_prepare_the_cache_once(phantom_root: Path, tmp_path: Path) -> None:
    """Two ranks start on an empty cache at once: one writes every entry, the other waits and reuses them."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    cases, root = find_cases(phantom_root), tmp_path / "cache"
    ranks = [context.Process(target=_prepare_in_a_process, args=(cases, root, queue)) for _ in range(2)]
    for rank in ranks:
        rank.start()
    for rank in ranks:
        rank.join(timeout=240)
    assert sorted(queue.get(timeout=5) for _ in ranks) == [(0, 3), (3, 0)]


def test_each_rank_reads_only_the_slices_its_sampler_hands_it(prepared: Path) -> None:
    viewed = _viewed(prepared, SliceView((Modality.T1,), (Modality.T2,)))
    for rank in range(2):
        dataset = StreamedSliceDataset(viewed, window=48, seed=0, memory_bytes=2**30)
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        handed = list(sampler)[:10]
        for index in handed:
            dataset[index]
        read = set(dataset._slice_memory()._slices)  # every slice this rank's process read from the cache
        expected = set()
        for index in handed:
            number, local = dataset.locate(index)
            expected.add((dataset.cases[number].case_id, int(dataset.cases[number].z[local])))
        assert read == expected
