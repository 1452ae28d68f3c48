"""Fixtures of the ``synnet`` command tests: small BraTS-layout datasets cut from the session's phantom
cases, the bundled models, and a real ``python -m service`` on them for ``--server``.

The bundled models accept any in-plane size >= 16, so every 4th voxel in-plane of 8 axial slices
(60×60×8, the BraTS affine kept) is enough to run them for real in about a second per case.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from live_service import live_service
from synnet.dataset_layout import BRATS_2021, BRATS_2023, Layout
from synnet.modalities import Modality

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "model_store"
# The models that serve what the tests below ask for, routed over the whole bundled store (each case's
# exact model, the unified model where its validation scores beat it beyond a rerun's noise; T1,T1c -> T2 and
# T1 -> FLAIR for T1,T1c -> T2,FLAIR, which the MIMO model does not beat), so a store of only these routes
# like the full one.
SERVED = [
    "synnet_t1-t1c-t2_to_flair", "synnet_t1-t1c_to_t2", "synnet_t1-t2-flair_to_t1c", "synnet_t1_to_flair",
    "synnet_unified",
]  # fmt: skip
CUT = (slice(None, None, 4), slice(None, None, 4), slice(72, 80))


def write_small_case(
    phantom_case: Path, root: Path, case_id: str, layout: Layout, keep: set[Modality], cut: tuple[slice, ...] = CUT
) -> Path:
    """``phantom_case`` cut to ``cut`` as ``root/case_id/`` with the files of ``keep`` named by ``layout``."""
    folder = root / case_id
    folder.mkdir(parents=True)
    for modality in keep:
        image = nib.load(phantom_case / BRATS_2021.file_name(phantom_case.name, modality))
        data = np.asarray(image.dataobj)[cut]
        nib.save(nib.Nifti1Image(data, image.affine, header=image.header), folder / layout.file_name(case_id, modality))
    return folder


@pytest.fixture(scope="session")
def phantom_cases(phantom_root: Path) -> list[Path]:
    return sorted(p for p in phantom_root.iterdir() if p.is_dir())


@pytest.fixture(scope="session")
def dataset(phantom_cases: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four cases: FLAIR missing, T2 and FLAIR missing, T1c missing (BraTS 2023 names), complete."""
    root = tmp_path_factory.mktemp("dataset")
    every = set(Modality)
    write_small_case(phantom_cases[0], root, "Case_A", BRATS_2021, every - {Modality.FLAIR})
    write_small_case(phantom_cases[1], root, "Case_B", BRATS_2021, {Modality.T1, Modality.T1c})
    write_small_case(phantom_cases[2], root, "BraTS-GLI-00003-000", BRATS_2023, every - {Modality.T1c})
    write_small_case(phantom_cases[0], root, "Case_D", BRATS_2021, every)
    return root


@pytest.fixture(scope="session")
def served_models() -> list[str]:
    """The bundled models the server below holds."""
    return list(SERVED)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m service`` on 127.0.0.1 serving the bundled models of :data:`SERVED`; its URL."""
    store = tmp_path_factory.mktemp("served_store")
    for name in SERVED:
        (store / name).symlink_to(BUNDLED / name, target_is_directory=True)
    env = {
        "SYNNET_MODEL_STORE": str(store), "SYNNET_DEVICE": "cpu", "SYNNET_LOG_LEVEL": "warning",
        "SYNNET_API_KEYS": "test-key",
    }  # fmt: skip
    with live_service(env, tmp_path_factory.mktemp("service") / "service.log", ready_timeout_s=180) as running:
        yield running.url
