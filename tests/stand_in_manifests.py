"""Manifests of models that were never trained: for tests of what reads only manifests and scores (routing)."""

from __future__ import annotations

from datetime import UTC, datetime

from synnet.manifest import ArchitectureSpec, LossSpec, ModelManifest, TrainingDataSpec


def stand_in_manifest(name: str, src: str, dst: str, any_to_any: bool = False) -> ModelManifest:
    """A valid manifest for ``src -> dst``; its digest matches no model file."""
    return ModelManifest(
        name=name,
        src=src,
        dst=dst,
        any_to_any=any_to_any,
        architecture=ArchitectureSpec(name="unified" if any_to_any else "synnet"),
        loss=LossSpec(name="joint"),
        training_data=TrainingDataSpec(source="generated", n_cases=1),
        sha256="0" * 64,
        created=datetime(2026, 1, 1, tzinfo=UTC),
    )
