"""What a model store serves, read from its folders: per single-target configuration, the routed model
and its recorded validation and test scores. One reading for the cards and the results page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from synnet.evaluation import EvaluationRecord
from synnet.manifest import ModelManifest
from synnet.modalities import Modality, format_modalities
from synnet.routing import all_configurations, recorded_metrics, served_configurations
from synnet.scores import HeldOutMetrics
from synnet.store import StoreError, model_folders, read_manifest

# the one BraTS 2023 case: test data for every model (no model trained on it, no choice was made on it)
BRATS23 = "brats23"


@dataclass(frozen=True)
class StoredModel:
    """One model folder of the store: its manifest (checked against its file) and its evaluation, if any."""

    folder: Path
    manifest: ModelManifest
    evaluation: EvaluationRecord | None

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def training_data(self) -> str:
        """Where its training subjects came from: the manifest's source, and the extra folder it also read."""
        extra = self.manifest.training.get("extra_data")
        return f"`{self.manifest.training_data.source}`" + (f" and `{extra}`" if extra else "")

    def validation(self, src: Sequence[Modality], target: Modality) -> HeldOutMetrics | None:
        """The validation scores routing compares for ``target`` from ``src`` (closest evaluated sources)."""
        found = recorded_metrics(self.manifest, src, target, self.evaluation)
        return found if isinstance(found, HeldOutMetrics) else None

    def test(self, src: Sequence[Modality], target: Modality) -> dict[str, HeldOutMetrics]:
        """The test scores of ``target`` from exactly ``src`` (a dedicated model: from its own), by dataset."""
        if self.evaluation is None:
            return {}
        found = {name: block.metrics(src, target) for name, block in sorted(self.evaluation.test.items())}
        return {name: metrics for name, metrics in found.items() if metrics is not None}


@dataclass(frozen=True)
class Served:
    """A single-target configuration the store serves, with the routed model's recorded scores."""

    src: tuple[Modality, ...]
    target: Modality
    model: StoredModel
    validation: HeldOutMetrics | None
    test: dict[str, HeldOutMetrics]

    @property
    def label(self) -> str:
        return f"{format_modalities(self.src)} → {self.target.value}"


def read_store(store: Path) -> list[StoredModel]:
    """Every model folder whose manifest matches its model file (a folder that would not serve is left out)."""
    return [
        StoredModel(folder, manifest, EvaluationRecord.load_if_present(folder))
        for folder in model_folders(store)
        if (manifest := _manifest_or_none(folder)) is not None
    ]


def _manifest_or_none(folder: Path) -> ModelManifest | None:
    try:
        return read_manifest(folder)
    except StoreError:  # what the service lists as unavailable: no card for it
        return None


def served(models: Sequence[StoredModel]) -> list[Served]:
    """The single-target configurations (routing's canonical order), each routed as a request for it would be.

    A request for several targets routes each as if asked alone, so these rows cover all 50 configurations.
    """
    by_name = {m.name: m for m in models}
    evaluations = {m.name: m.evaluation for m in models}
    rows = []
    for configuration in served_configurations([m.manifest for m in models], evaluations):
        if len(configuration.dst) != 1:
            continue
        (target,) = configuration.dst
        model = by_name[configuration.targets[target][0]]
        src = configuration.src
        rows.append(Served(src, target, model, model.validation(src, target), model.test(src, target)))
    return rows


def own_configurations(model: StoredModel) -> list[tuple[tuple[Modality, ...], Modality]]:
    """The single-target configurations a model was scored on: a dedicated model's own, an any-to-any model's 28."""
    if model.manifest.any_to_any:
        return [(src, dst[0]) for src, dst in all_configurations() if len(dst) == 1]
    return [(tuple(model.manifest.src), target) for target in model.manifest.dst]
