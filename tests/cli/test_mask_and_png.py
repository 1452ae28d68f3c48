"""A brain mask and PNG output, which the service had first, through every way in: the Python API
(``mask=``, ``format=``), ``synnet synthesize --mask --format`` locally and with ``--server``, and
``POST /synthesize`` on a real ``python -m service`` give the same voxels and pixels."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pytest

from synnet import Synthesizer
from synnet.dataset_layout import BRATS_2021
from synnet.imageio import read_image, write_png
from synnet.modalities import Modality
from synnet.normalization import brain_mask
from synnet_cli.__main__ import main

pytestmark = pytest.mark.slow

T1, T1c, T2, FLAIR = Modality.T1, Modality.T1c, Modality.T2, Modality.FLAIR
SOURCES = (T1, T1c, T2)
BUNDLED = Path(__file__).resolve().parents[2] / "model_store"
KEY = ["--api-key", "test-key"]
LOCAL = ["--store", str(BUNDLED), "--device", "cpu"]


@pytest.fixture(scope="module")
def synthesizer() -> Synthesizer:
    return Synthesizer(BUNDLED, "cpu")


@pytest.fixture(scope="module")
def files(dataset: Path) -> dict[Modality, Path]:
    return {m: dataset / "Case_D" / BRATS_2021.file_name("Case_D", m) for m in Modality}


def source_options(paths: dict[Modality, Path]) -> list[str]:
    return [arg for m in SOURCES for arg in (f"--{m.value.lower()}", str(paths[m]))]


def served(server: str, paths: dict[Modality, Path], **params: object) -> bytes:
    """The one target of ``POST /synthesize?download=1`` for these files (``mask`` sent as the mask part)."""
    parts = {m.value: paths[m].read_bytes() for m in SOURCES}
    if "mask" in paths:
        parts["mask"] = paths["mask"].read_bytes()
    response = httpx.post(
        f"{server}/synthesize", params={"dst": "FLAIR", "download": 1, **params}, files=parts,
        headers={"X-API-Key": "test-key"}, timeout=120,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.content


def test_a_mask_bounds_the_synthesis_alike_everywhere(files, synthesizer, server, tmp_path, capsys) -> None:
    volume = nib.load(files[T1])
    inside = brain_mask([np.asarray(nib.load(files[m]).dataobj) for m in SOURCES])
    mask = inside.copy()
    mask[:30] = False  # half of the brain
    paths = {**files, "mask": tmp_path / "mask.nii.gz"}
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), volume.affine), paths["mask"])

    api = synthesizer.synthesize({m: files[m] for m in SOURCES}, "FLAIR", mask=paths["mask"])
    expected = np.asarray(api["FLAIR"].dataobj)
    assert not expected[inside & ~mask].any() and expected[mask].any()
    unmasked = np.asarray(synthesizer.synthesize({m: files[m] for m in SOURCES}, "FLAIR")["FLAIR"].dataobj)
    assert not np.array_equal(expected[mask], unmasked[mask])  # normalized inside the mask given

    for where, engine in (("local", LOCAL), ("remote", ["--server", server, *KEY])):
        command = ["synthesize", *source_options(files), "--mask", str(paths["mask"]), "--dst", "FLAIR"]
        assert main([*command, "-o", str(tmp_path / where), *engine]) == 0
        written = nib.load(tmp_path / where / "synthetic_FLAIR.nii.gz")
        np.testing.assert_array_equal(np.asarray(written.dataobj), expected)
    capsys.readouterr()
    download = nib.Nifti1Image.from_bytes(gzip.decompress(served(server, paths)))
    np.testing.assert_array_equal(np.asarray(download.dataobj), expected)
    np.testing.assert_array_equal(download.affine, api["FLAIR"].affine)


def test_png_output_is_the_same_image_everywhere(files, synthesizer, server, tmp_path, capsys) -> None:
    slices = {}
    for m in SOURCES:
        slices[m] = tmp_path / f"{m.value}.png"
        slices[m].write_bytes(write_png(np.asarray(nib.load(files[m]).dataobj)[:, :, 4], 8))

    api = synthesizer.synthesize({m: slices[m] for m in SOURCES}, "FLAIR", format="png")
    file = api.files[FLAIR]
    assert (file.extension, file.media_type) == (".png", "image/png") and api.models[FLAIR]
    with pytest.raises(KeyError, match=r"FLAIR was written as \.png, not NIfTI: see \.files"):
        api["FLAIR"]
    expected, meta = read_image(file.payload, "synthetic_FLAIR.png")
    assert expected.shape == (60, 60) and meta.bit_depth == 8 and expected.max() > 0  # the sources' depth

    for where, engine in (("local", LOCAL), ("remote", ["--server", server, *KEY])):
        command = ["synthesize", *source_options(slices), "--dst", "FLAIR", "--format", "png"]
        assert main([*command, "-o", str(tmp_path / where), *engine]) == 0
        assert (tmp_path / where / "synthetic_FLAIR.png").read_bytes() == file.payload
    assert "synthetic_FLAIR.png" in capsys.readouterr().out
    assert served(server, slices, format="png") == file.payload

    volume_as_png = ["synthesize", *source_options(files), "--dst", "FLAIR", "--format", "png", "-o", str(tmp_path)]
    assert main([*volume_as_png, *LOCAL]) == 2
    assert "unsupported_output_format: PNG output needs a 2D image" in capsys.readouterr().err
