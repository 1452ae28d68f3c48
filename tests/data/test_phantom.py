"""Generated BraTS-like cases: determinism, geometry, tissue contrasts, lesions and the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from synnet.modalities import Modality
from training.data.brats import find_cases, load_case
from training.phantom import case_seed, generate_case, tissues
from training.phantom.__main__ import main
from training.phantom.anatomy import BRATS_AFFINE, BRATS_SHAPE, load_template, template_dir
from training.phantom.fields import smooth_field
from training.phantom.write import FILE_SUFFIXES

CSF, GM, WM = 1, 2, 3  # "tissue" labels
NECROSIS, OEDEMA, ENHANCING = 1, 2, 4  # BraTS seg labels


@pytest.fixture(scope="module")
def generated(monkeypatch_module) -> dict:
    """Case 0 of the seed-0 dataset, generated in memory with the network cut off."""

    def no_network(*args, **kwargs):
        raise AssertionError("the phantom generator tried to open a network connection")

    monkeypatch_module.setattr(socket.socket, "connect", no_network)
    load_template.cache_clear()  # read the template again, offline
    return generate_case(case_seed(0, 0))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _median(image: np.ndarray, region: np.ndarray) -> float:
    assert region.sum() >= 50, f"region too small to measure: {region.sum()} voxels"
    return float(np.median(image[region]))


def _regions(case: dict) -> dict[str, np.ndarray]:
    """Pure tissue and lesion cores (eroded by one voxel, away from partial volumes)."""
    eroded = {label: ndimage.binary_erosion(case["seg"] == label) for label in (NECROSIS, OEDEMA, ENHANCING)}
    return {
        "csf": case["tissue"] == CSF,
        "gm": case["tissue"] == GM,
        "wm": case["tissue"] == WM,
        "necrosis": eroded[NECROSIS],
        "oedema": eroded[OEDEMA],
        "enhancing": eroded[ENHANCING],
    }


# --- determinism and geometry --------------------------------------------------------------------


def test_same_seed_gives_identical_data(generated: dict, phantom_root: Path) -> None:
    """The session's case 0 was written earlier from the same seed: the bytes of data agree."""
    folder = phantom_root / "BraTS2021_phantom_00000"
    for modality, suffix in FILE_SUFFIXES.items():
        on_disk = np.asanyarray(nib.load(folder / f"BraTS2021_phantom_00000_{suffix}.nii.gz").dataobj)
        assert on_disk.dtype == np.int16
        assert on_disk.tobytes() == generated[modality].tobytes(), modality
    seg = np.asanyarray(nib.load(folder / "BraTS2021_phantom_00000_seg.nii.gz").dataobj)
    assert seg.tobytes() == generated["seg"].tobytes()


def test_different_seeds_give_different_cases(phantom_root: Path) -> None:
    a, b = (load_case(c, [Modality.T2]).images[Modality.T2] for c in find_cases(phantom_root)[:2])
    assert not np.array_equal(a, b)
    seeds = {case_seed(dataset, index) for dataset in range(3) for index in range(3)}
    assert len(seeds) == 9


def test_brats_geometry_and_zero_background(generated: dict) -> None:
    np.testing.assert_array_equal(generated["affine"], BRATS_AFFINE)
    masks = []
    for modality in Modality:
        image = generated[modality]
        assert image.shape == BRATS_SHAPE == (240, 240, 155) and image.dtype == np.int16
        assert image.min() == 0 and image.max() > 100
        masks.append(image > 0)
    for mask in masks[1:]:  # one brain: every modality is nonzero on exactly the same voxels
        np.testing.assert_array_equal(mask, masks[0])
    brain = masks[0]
    assert 1.0e6 < brain.sum() < 2.0e6  # an adult brain, in 1 mm voxels
    assert not brain[[0, -1]].any() and not brain[:, [0, -1]].any() and not brain[:, :, -1].any()
    assert np.all(generated["tissue"][~brain] == 0) and np.all(generated["seg"][~brain] == 0)


def test_template_ships_with_nilearn() -> None:
    names = {p.name for p in template_dir().iterdir()}
    assert "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz" in names
    assert "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz" in names


# --- contrasts -----------------------------------------------------------------------------------

# (brighter, darker, minimum ratio of their medians) in each modality
ORDERINGS = {
    Modality.T1: [("wm", "gm", 1.1), ("gm", "csf", 1.2), ("wm", "oedema", 1.05), ("gm", "necrosis", 1.05)],
    Modality.T1c: [("enhancing", "wm", 1.3), ("wm", "gm", 1.1), ("gm", "csf", 1.2), ("enhancing", "necrosis", 1.5)],
    Modality.T2: [("csf", "gm", 1.3), ("gm", "wm", 1.2), ("oedema", "gm", 1.2), ("necrosis", "wm", 1.5)],
    Modality.FLAIR: [("gm", "wm", 1.02), ("wm", "csf", 2.0), ("oedema", "gm", 1.3), ("oedema", "wm", 1.5)],
}


@pytest.mark.parametrize("modality", list(Modality))
def test_tissue_contrast_ordering(generated: dict, modality: Modality) -> None:
    image = generated[modality].astype(np.float64)
    regions = _regions(generated)
    for brighter, darker, ratio in ORDERINGS[modality]:
        high, low = _median(image, regions[brighter]), _median(image, regions[darker])
        assert high > ratio * low, f"{modality}: {brighter} {high:.0f} should exceed {ratio} x {darker} {low:.0f}"


def test_signal_equations_by_hand() -> None:
    tr, te = 500.0, 15.0
    protocol = tissues.Protocol(tissues.SpinEcho(tr_ms=tr, te_ms=te))
    expected = 0.7 * (1 - np.exp(-tr / 1084.0)) * np.exp(-te / 69.0)
    assert tissues.signal(protocol, 1084.0, 69.0, 0.7) == pytest.approx(expected)
    flair = tissues.PROTOCOLS[Modality.FLAIR]
    assert tissues.tissue_signal(flair, tissues.CSF) < 1e-9  # TI nulls CSF
    assert tissues.tissue_signal(flair, tissues.WM) > 0.05
    t1c = tissues.PROTOCOLS[Modality.T1c]
    no_gd = tissues.signal(t1c, 1800.0, 110.0, 0.85, gd_mm=0.0)
    assert tissues.signal(t1c, 1800.0, 110.0, 0.85, gd_mm=0.3) > 1.5 * no_gd  # T1 shortening


def test_smooth_field_is_normalized_smooth_and_seeded() -> None:
    a = smooth_field(np.random.default_rng(1), (30, 20, 10), spacing=6.0)
    b = smooth_field(np.random.default_rng(1), (30, 20, 10), spacing=6.0)
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean()) < 1e-5 and a.std() == pytest.approx(1.0, abs=1e-4)
    neighbour_corr = np.corrcoef(a[1:].ravel(), a[:-1].ravel())[0, 1]
    assert neighbour_corr > 0.95


# --- lesions -------------------------------------------------------------------------------------


def test_every_case_has_all_tumour_labels(phantom_root: Path) -> None:
    for case in find_cases(phantom_root):
        seg = np.asanyarray(nib.load(case.seg).dataobj)
        labels, counts = np.unique(seg, return_counts=True)
        assert labels.tolist() == [0, NECROSIS, OEDEMA, ENHANCING], case.case_id
        assert counts[1:].min() >= 100, f"{case.case_id}: label voxel counts {counts.tolist()}"


def test_lesion_compartments_are_nested(generated: dict) -> None:
    """Necrotic core inside the enhancing rim, oedema further out."""
    seg = generated["seg"]
    core = seg == NECROSIS
    shell = ndimage.binary_dilation(core) & ~core
    around_core = np.bincount(seg[shell], minlength=5)
    assert around_core[ENHANCING] > 0.5 * shell.sum(), f"labels around the core: {around_core.tolist()}"
    box = ndimage.find_objects((seg > 0).astype(np.uint8))[0]
    distance = ndimage.distance_transform_edt(~core[box])
    rim, oedema = np.median(distance[seg[box] == ENHANCING]), np.median(distance[seg[box] == OEDEMA])
    assert 0 < rim < oedema, f"median distance from the core: enhancing {rim:.1f}, oedema {oedema:.1f} mm"


# --- command line --------------------------------------------------------------------------------


def test_cli_writes_cases_the_loader_reads(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path), "--cases", "1", "--seed", "4"]) == 0
    assert "BraTS2021_phantom_00000" in capsys.readouterr().out
    (case,) = find_cases(tmp_path)
    loaded = load_case(case, list(Modality))
    assert loaded.shape == (240, 240, 155) and loaded.seg is not None
    header = nib.load(case.files[Modality.T1]).header
    assert header.get_data_dtype() == np.int16 and header.get_zooms() == (1.0, 1.0, 1.0)


def test_cli_rejects_bad_counts(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path), "--cases", "0"]) == 2
    assert "--cases must be at least 1, got 0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_cli_help_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "training.phantom", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--cases N" in result.stdout and "--seed S" in result.stdout and "BraTS 2021" in result.stdout
