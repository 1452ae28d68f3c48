"""The model manifest: everything the service must know about a model, stored beside its weights.

``model_store/<name>/manifest.json`` sits next to ``model.pt`` (TorchScript) and ``model.pt2`` (the same
network as a ``torch.export`` program, :data:`PROGRAM_FILE`). Training writes it;
the service reads it to route requests, normalize inputs exactly as training did, map outputs
back to raw units, and refuse a model whose digest does not match.

The digest (``sha256``, :func:`model_digest`) covers the model file, the exported program when the
manifest names one, *and* every manifest field
that changes what the model returns for an upload (:data:`OUTPUT_FIELDS`: source and target order,
normalization, output reference, input spec), so editing any of them after export makes the
model unusable instead of silently wrong. Descriptive fields (name, training record, validation
scores) are not covered. Held-out scores live in ``evaluation.json`` beside the manifest
(:mod:`synnet.evaluation`), so scoring a model never rewrites what it is verified by.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from synnet.modalities import Modality, parse_modality
from synnet.neighbours import MAX_CONTEXT_SLICES, slices_per_source
from synnet.normalization import IntensityRange, NormalizationParams
from synnet.scores import TargetMetrics

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.pt"
PROGRAM_FILE = "model.pt2"
SCHEMA_VERSION = 2  # 2: sha256 covers OUTPUT_FIELDS too; held-out scores moved to evaluation.json
# Manifest fields that change a model's outputs for a given upload: part of its digest.
OUTPUT_FIELDS = (
    "model_file",
    "src",
    "dst",
    "normalization",
    "output_reference",
    "input",
    "any_to_any",
    "exported_program",
)


class ArchitectureSpec(BaseModel):
    """Which registered network, and the keyword arguments its builder was called with."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class LossSpec(BaseModel):
    name: str
    lambdas: dict[str, float] = Field(default_factory=dict)


class InputSpec(BaseModel):
    """The exported network's input, (B, len(src)·(2·context_slices+1), H, W) in model space."""

    multiple_of: int = Field(default=16, description="the model pads H and W to this multiple itself")
    min_size: int = 16
    max_size: int = 1024
    trained_slice_size: int | None = None
    context_slices: int = Field(
        default=0,
        ge=0,
        le=MAX_CONTEXT_SLICES,
        description="axial neighbours on each side fed with every source slice (2.5D input, synnet.neighbours)",
    )

    @property
    def slices_per_source(self) -> int:
        return slices_per_source(self.context_slices)


class TrainingDataSpec(BaseModel):
    source: str = Field(description="'generated' or the path/name of the BraTS folder")
    n_cases: int
    train_cases: list[str] = Field(default_factory=list)
    val_cases: list[str] = Field(default_factory=list)
    test_cases: list[str] = Field(default_factory=list)
    split_seed: int = 0


class ConfigurationCheck(BaseModel):
    """What a change built into model.pt did to one (sources, target) on training cases it was not fitted on.

    The output calibration records one per map; the flip ensemble one per configuration.
    """

    sources: list[Modality]
    target: Modality
    adopted: bool = Field(description="whether model.pt applies the change here (training.output_check.RULE)")
    check_cases: int = Field(description="training cases it was scored on, none of them used to fit it")
    psnr_brain_before: float
    psnr_brain_after: float
    ssim_brain_before: float
    ssim_brain_after: float
    ssim_tumour_before: float | None = Field(
        default=None, description="BraSyn's tumour-region SSIM, over the check cases with a segmentation"
    )
    ssim_tumour_after: float | None = None


class OutputCalibration(BaseModel):
    """A monotone map of output intensities per (sources, target), built into ``model.pt`` by training.calibrate.

    Descriptive: the maps themselves are buffers of the model file, so the digest covers them.
    """

    method: str = Field(default="quantile_map", description="output quantiles mapped onto the truth's")
    quantiles: int = Field(description="knots per map")
    rule: str = Field(description="when a map is adopted")
    fit_cases: list[str] = Field(description="training cases whose quantiles make the maps that were checked")
    check_cases: list[str] = Field(
        description="other training cases the maps were scored on; the adopted maps use both"
    )
    configurations: list[ConfigurationCheck]


class FlipEnsemble(BaseModel):
    """Outputs averaged over the training flips per (sources, target), built into ``model.pt`` (training.flip_ensemble).

    Descriptive: which channels are averaged is a buffer of the model file, so the digest covers it.
    """

    flips: list[str] = Field(description="the views averaged, each flipped back: the augmentation's flips")
    rule: str = Field(description="when a configuration is averaged")
    check_cases: list[str] = Field(description="training cases the average was scored on (nothing is fitted)")
    configurations: list[ConfigurationCheck]


class ModelManifest(BaseModel):
    """The JSON document beside each exported model."""

    model_config = ConfigDict(protected_namespaces=())

    schema_version: int = SCHEMA_VERSION
    name: str
    version: str = "1"
    src: list[Modality]
    dst: list[Modality]
    architecture: ArchitectureSpec
    loss: LossSpec
    normalization: NormalizationParams = Field(default_factory=NormalizationParams)
    output_reference: dict[Modality, IntensityRange] = Field(
        default_factory=dict,
        description="raw (lo, hi) a synthesized target is mapped back to: median over training cases",
    )
    input: InputSpec = Field(default_factory=InputSpec)
    any_to_any: bool = Field(
        default=False,
        description="true: the model takes all of src (T1, T1c, T2, FLAIR) plus which are present, "
        "forward(x (B, 4, H, W), present (B, 4)), and serves every (sources, targets) with no modality in both",
    )
    training_data: TrainingDataSpec
    training: dict[str, Any] = Field(default_factory=dict, description="epochs, optimizer, batch size, seed...")
    validation: dict[Modality, TargetMetrics] = Field(default_factory=dict)
    output_calibration: OutputCalibration | None = Field(
        default=None, description="the intensity maps model.pt applies to its outputs, and why (training.calibrate)"
    )
    flip_ensemble: FlipEnsemble | None = Field(
        default=None, description="the outputs model.pt averages over flipped views, and why (training.flip_ensemble)"
    )
    frameworks: dict[str, str] = Field(default_factory=dict)
    model_file: str = MODEL_FILE
    exported_program: str | None = Field(
        default=None,
        description="the torch.export program of the same network beside the model file (model.pt2); "
        "its inputs' H and W are multiples of input.multiple_of",
    )
    sha256: str = Field(
        description="model_digest(): the model file, the exported program and the OUTPUT_FIELDS of this manifest"
    )
    created: datetime

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {value} is not {SCHEMA_VERSION}: re-export the model with this release "
                "(schema 1 digests covered the model file only)"
            )
        return value

    @field_validator("src", "dst", mode="before")
    @classmethod
    def _canonical(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        return [parse_modality(v) for v in value]

    @property
    def input_channels(self) -> int:
        """Channels of the network's ``x``: every source with its axial neighbours."""
        return len(self.src) * self.input.slices_per_source

    @property
    def config_key(self) -> tuple[tuple[Modality, ...], tuple[Modality, ...]]:
        return tuple(self.src), tuple(self.dst)

    def serves(self, src: Sequence[Modality], target: Modality) -> bool:
        """Whether this model can make ``target`` from exactly the sources ``src`` (or more of them)."""
        if self.any_to_any:
            return target not in src and set(src) <= set(self.src) and bool(set(src))
        return set(self.src) <= set(src) and target in self.dst

    def sealed(self, model_path: str | Path) -> ModelManifest:
        """This manifest with ``sha256`` set to :func:`model_digest` of ``model_path`` and its output fields."""
        return self.model_copy(update={"sha256": model_digest(model_path, self)})

    def public(self) -> dict[str, Any]:
        """The manifest as shown to API users: no file names or framework internals."""
        return self.model_dump(
            mode="json", exclude={"model_file", "exported_program", "frameworks", "output_reference"}
        )

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_FILE
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ModelManifest:
        return cls.model_validate_json((Path(directory) / MANIFEST_FILE).read_text())


def model_digest(model_path: str | Path, manifest: ModelManifest) -> str:
    """sha256 over the model file's bytes, the exported program's beside it (when the manifest names one)
    and the canonical JSON of the manifest's :data:`OUTPUT_FIELDS`."""
    digest = hashlib.sha256(bytes.fromhex(sha256_file(model_path)))
    if manifest.exported_program is not None:
        digest.update(bytes.fromhex(sha256_file(Path(model_path).parent / manifest.exported_program)))
    fields = manifest.model_dump(mode="json", include=set(OUTPUT_FIELDS))
    # fields at their default are left out, so digests of models exported before the field stay valid
    for default_false in ("any_to_any", "exported_program"):
        if not fields[default_false]:
            del fields[default_false]
    if not fields["input"]["context_slices"]:
        del fields["input"]["context_slices"]
    if fields["normalization"]["target_anchor"] == "percentile":
        del fields["normalization"]["target_anchor"]
    digest.update(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
