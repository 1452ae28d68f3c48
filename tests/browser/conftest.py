"""Fixtures of the viewer tests: the real ``python -m service`` on 127.0.0.1 serving a tiny model
that ``python -m training.fit`` trained on the session's phantom cases (and, for the any-to-any
tests, beside it a tiny unified model), inputs cut from one of those cases, and a page in
Debian's headless Chromium driven by Playwright.

Chromium is the system one (``executable_path``): Playwright never downloads a browser here.
Without it the tests skip, saying so; ``.ci/run`` installs it, so in CI they run.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from synnet.evaluation import EvaluationRecord
from unified_model import fit_unified

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
API_KEY = "viewer-test-key"
# One T1 -> T2 model, as small as training.fit makes them: two steps on 32x32 crops.
TINY_FIT = [
    "--src", "T1", "--dst", "T2", "--epochs", "1", "--max-steps", "2", "--batch-size", "2",
    "--slice-size", "32", "--features", "4", "--depth", "2", "--val-max-slices", "2", "--seed", "0",
]  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium the viewer tests skip before any fixture trains a model or starts a server."""
    if Path(CHROMIUM).exists():
        return
    here = Path(__file__).parent
    reason = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def viewer_store(tmp_path_factory: pytest.TempPathFactory, phantom_root: Path) -> Path:
    """A model store holding ``t1_to_t2``, trained and exported by the real training.fit, with the card
    training.cards makes for it (its figure from a phantom case standing in for BraTS 2023)."""
    root = tmp_path_factory.mktemp("viewer_models")
    brats23 = root / "data" / "brats23"
    brats23.mkdir(parents=True)
    case = sorted(p for p in phantom_root.iterdir() if p.is_dir())[0]
    (brats23 / case.name).symlink_to(case, target_is_directory=True)
    commands = [
        [sys.executable, "-m", "training.fit", *TINY_FIT, "--data", str(phantom_root),
         "--out", str(root / "store"), "--name", "t1_to_t2", "--run-dir", str(root / "run")],
        [sys.executable, "-m", "training.cards", "--store", str(root / "store"), "--no-results",
         "--data", str(brats23.parent)],
    ]  # fmt: skip
    for command in commands:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"{command[2]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return root / "store"


# The held-out score recorded for the unified model's FLAIR -> T1 (no other): the page must show it.
UNIFIED_FLAIR_TO_T1_SSIM = 0.789


@pytest.fixture(scope="session")
def unified_store(viewer_store: Path, tmp_path_factory: pytest.TempPathFactory, phantom_root: Path) -> Path:
    """``t1_to_t2`` beside a tiny unified model trained by the real training.fit, with one recorded score."""
    root = tmp_path_factory.mktemp("viewer_unified")
    store = root / "store"
    shutil.copytree(viewer_store, store)
    folder = fit_unified(phantom_root, store, root / "run")
    flair_to_t1 = {"src": ["FLAIR"], "target": "T1", "metrics": {"ssim_brain": UNIFIED_FLAIR_TO_T1_SSIM}}
    EvaluationRecord.model_validate({"configurations": [flair_to_t1], "data": {"cases": ["viewer test"]}}).save(folder)
    return store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def service(store: Path, log: Path, **settings: str) -> Iterator[str]:
    """``python -m service`` on a free port of 127.0.0.1 until the block ends; yields its URL.

    ``settings`` are extra ``SYNNET_*`` variables, e.g. ``api_keys="k"``.
    """
    port = free_port()
    command = [sys.executable, "-m", "service", "--port", str(port), "--model-store", str(store)]
    env = os.environ | {"SYNNET_DEVICE": "cpu", "SYNNET_LOG_LEVEL": "warning", "SYNNET_TORCH_THREADS": "1"}
    env |= {f"SYNNET_{name.upper()}": value for name, value in settings.items()}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while not ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"python -m service did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.kill()  # nothing to shut down gracefully: the tests only read from it
        process.wait(timeout=10)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def server(viewer_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service without API keys; yields its URL."""
    with service(viewer_store, tmp_path_factory.mktemp("service") / "service.log") as url:
        yield url


@pytest.fixture(scope="module")
def keyed_server(viewer_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service with ``SYNNET_API_KEYS`` set to :data:`API_KEY`; yields its URL."""
    log = tmp_path_factory.mktemp("keyed_service") / "service.log"
    with service(viewer_store, log, api_keys=API_KEY) as url:
        yield url


@pytest.fixture(scope="module")
def unified_server(unified_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on :func:`unified_store`, without API keys; yields its URL."""
    with service(unified_store, tmp_path_factory.mktemp("unified_service") / "service.log") as url:
        yield url


@pytest.fixture(scope="session")
def api_key() -> str:
    return API_KEY


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; the test fails if the page's own script throws."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    yield page
    context.close()
    assert not script_errors, f"the page's script threw: {script_errors}"


# ---------------------------------------------------------------------------------------------
# Inputs: BraTS-named files cut from the first phantom case.


@dataclass(frozen=True)
class CaseFiles:
    """A small NIfTI case and one PNG slice of it, as files a user would pick."""

    t1: Path
    t1ce: Path
    t2: Path
    flair: Path
    t1_png: Path
    t2_png: Path
    shape: tuple[int, int, int]
    affine: np.ndarray


def load_volume(case: Path, suffix: str) -> nib.Nifti1Image:
    return nib.load(next(case.glob(f"*_{suffix}.nii.gz")))


def write_png(path: Path, image: np.ndarray) -> None:
    pixels = np.rint(np.clip(image / max(float(image.max()), 1e-9), 0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


@pytest.fixture(scope="session")
def case_files(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> CaseFiles:
    """Every 2nd voxel in-plane and 40 middle slices of a phantom case: 120x120x40, served in seconds."""
    case = sorted(p for p in phantom_root.iterdir() if p.is_dir())[0]
    out = tmp_path_factory.mktemp("viewer_case")
    paths = {}
    for suffix in ("t1", "t1ce", "t2", "flair"):
        image = load_volume(case, suffix)
        slab = np.asarray(image.dataobj)[::2, ::2, 55:95]
        affine = image.affine @ np.diag([2.0, 2.0, 1.0, 1.0])
        small = nib.Nifti1Image(np.ascontiguousarray(slab), affine)
        paths[suffix] = out / f"BraTS2021_small_{suffix}.nii.gz"
        paths[suffix].write_bytes(gzip.compress(small.to_bytes(), mtime=0))
        if suffix in ("t1", "t2"):  # names without a modality: the user places these on their slots by hand
            paths[f"{suffix}_png"] = out / f"axial_{'source' if suffix == 't1' else 'truth'}.png"
            write_png(paths[f"{suffix}_png"], slab[:, :, 20].astype(np.float64))
    return CaseFiles(**paths, shape=slab.shape, affine=affine)
