"""A model's held-out scores: ``<store>/<name>/evaluation.json``, written by ``training.evaluate``.

Kept beside the manifest rather than inside it: the manifest is sealed by the model's digest
(:func:`synnet.manifest.model_digest`), and scoring a model must not rewrite what it is verified
by. Routing and ``/models`` read these scores to say how good a model is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from synnet.manifest import TargetMetrics
from synnet.modalities import Modality

EVALUATION_FILE = "evaluation.json"


class EvaluationRecord(BaseModel):
    """Mean (and spread) over held-out cases of each target's scores, and what they were measured on."""

    targets: dict[Modality, TargetMetrics] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict, description="data folder, cases, command")

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / EVALUATION_FILE
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        return path

    @classmethod
    def load_if_present(cls, folder: str | Path) -> EvaluationRecord | None:
        path = Path(folder) / EVALUATION_FILE
        return cls.model_validate_json(path.read_text()) if path.is_file() else None
