"""A model's held-out scores: ``<store>/<name>/evaluation.json``, written by ``training.evaluate``.

Kept beside the manifest rather than inside it: the manifest is sealed by the model's digest
(:func:`synnet.manifest.model_digest`), and scoring a model must not rewrite what it is verified
by. Routing and ``/models`` read these scores to say how good a model is; the store reads the bf16
cost (``training.precision_cost``) to decide whether the model may serve bf16 (:mod:`synnet.precision`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from synnet.modalities import Modality
from synnet.scores import HeldOutMetrics

EVALUATION_FILE = "evaluation.json"


class DatasetScores(BaseModel):
    """A model's scores on one test dataset: data no choice about the model saw, only reported.

    The same shape as the validation scores of :class:`EvaluationRecord`: a dedicated model's per
    target (on its own sources), an any-to-any model's per configuration evaluated there.
    """

    data: str = Field(description="the dataset's folder")
    cases: list[str]
    targets: dict[Modality, HeldOutMetrics] = Field(default_factory=dict)
    configurations: list[ConfigurationScore] = Field(default_factory=list)

    def metrics(self, src: Iterable[Modality], target: Modality) -> HeldOutMetrics | None:
        """The scores of ``target`` made from exactly ``src`` (any-to-any), else of ``target`` (dedicated)."""
        given = set(src)
        exact = [c.metrics for c in self.configurations if c.target == target and set(c.src) == given]
        return exact[0] if exact else self.targets.get(target)


class ConfigurationScore(BaseModel):
    """Held-out scores of one target made from one set of sources (an any-to-any model's)."""

    src: list[Modality]
    target: Modality
    metrics: HeldOutMetrics


class PrecisionCheck(BaseModel):
    """In-brain scores of one configuration in fp32 and in bf16, means over the cases; loss = fp32 − bf16."""

    src: list[Modality]
    target: Modality
    psnr_brain_fp32: float
    psnr_brain_bf16: float
    ssim_brain_fp32: float
    ssim_brain_bf16: float
    psnr_brain_loss: float
    ssim_brain_loss: float
    worst_case_psnr_brain_loss: float = Field(description="the largest loss of one case")
    worst_case_ssim_brain_loss: float


class PrecisionCost(BaseModel):
    """What serving bf16 (autocast) instead of fp32 costs the model's outputs, measured on held-out cases."""

    cases: list[str] = Field(description="the cases scored, as <dataset>/<case>")
    cpu: str = Field(description="where it was measured (bf16 kernels differ between AMX, AVX512-BF16 and GPUs)")
    torch: str
    sha256: str = Field(description="the digest of the model measured: a re-exported model needs measuring again")
    command: str
    configurations: list[PrecisionCheck]

    @property
    def psnr_brain_loss(self) -> float:
        """The worst configuration's mean in-brain PSNR loss (dB)."""
        return max(c.psnr_brain_loss for c in self.configurations)

    @property
    def ssim_brain_loss(self) -> float:
        """The worst configuration's mean in-brain SSIM loss."""
        return max(c.ssim_brain_loss for c in self.configurations)


class EvaluationRecord(BaseModel):
    """Mean (and spread) over held-out cases of each target's scores, and what they were measured on.

    ``targets``, ``configurations`` and ``data`` are the **validation** scores: on the subjects the
    manifest lists as ``test_cases``, which choices about the model were made on (its adoption, routing
    between models), so they are what routing compares. A dedicated model is scored on its own
    configuration (``targets``); an any-to-any model on each configuration it was evaluated on
    (``configurations``, one entry per (sources, target)). ``test``: the scores on datasets no choice
    saw, by dataset name, only reported.
    """

    targets: dict[Modality, HeldOutMetrics] = Field(default_factory=dict)
    configurations: list[ConfigurationScore] = Field(default_factory=list)
    test: dict[str, DatasetScores] = Field(default_factory=dict, description="test scores by dataset name")
    data: dict[str, Any] = Field(default_factory=dict, description="data folder, cases, command")
    bf16: PrecisionCost | None = Field(
        default=None, description="what bf16 costs the outputs (training.precision_cost)"
    )

    def score(self, src: Iterable[Modality], target: Modality) -> ConfigurationScore | None:
        """The scores for ``target`` from ``src``, else from the closest evaluated sources, else None.

        Closest: most sources in common with ``src``, then fewest sources not in ``src``, then the
        sources in canonical order (deterministic). A configuration that uses the target as a source never counts.
        """
        given = set(src)
        candidates = [c for c in self.configurations if c.target == target and target not in given]
        if not candidates:
            return None

        order = list(Modality)

        def distance(c: ConfigurationScore) -> tuple[int, int, list[int]]:
            have = set(c.src)
            return (-len(have & given), len(have - given), sorted(order.index(m) for m in have))

        return min(candidates, key=distance)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / EVALUATION_FILE
        unmeasured = {"bf16"} if self.bf16 is None else set()
        path.write_text(json.dumps(self.model_dump(mode="json", exclude=unmeasured), indent=2) + "\n")
        return path

    @classmethod
    def load_if_present(cls, folder: str | Path) -> EvaluationRecord | None:
        path = Path(folder) / EVALUATION_FILE
        return cls.model_validate_json(path.read_text()) if path.is_file() else None
