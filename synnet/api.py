"""The Python API: synthesize missing contrasts in a script or a notebook, without a server.

    from synnet import Synthesizer
    s = Synthesizer()                                      # the bundled models, GPU when there is one
    out = s.synthesize({"T1": "a_t1.nii.gz", "T1c": img}, dst="T2")
    out["T2"].to_filename("synthetic_t2.nii.gz")

An adapter over :mod:`synnet.pipeline`, the service's own request pipeline, with the store's
models as the forward: the same inputs give the same voxels, metrics, warnings and errors here,
through ``synnet`` on the command line and through ``POST /synthesize``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import nibabel as nib
import numpy as np
import torch

from synnet import routing
from synnet.errors import UnknownModalityError
from synnet.evaluation import EvaluationRecord
from synnet.imageio import EncodedImage, OutputFormat
from synnet.imageio.nibabel_io import to_nibabel
from synnet.input_checks import InputWarning
from synnet.manifest import ModelManifest
from synnet.modalities import Modality, parse_modalities, parse_modality
from synnet.pipeline import ImageInput, Pipeline, Synthesis, SynthesisRequest, run
from synnet.scores import MetricReport
from synnet.settings import StoreSettings, env_name, read
from synnet.store import (
    LoadedModel,
    StoreError,
    Unavailable,
    default_batch_size,
    load_model,
    model_folders,
    read_manifest,
    resolve_device,
)

logger = logging.getLogger(__name__)


Image: TypeAlias = str | os.PathLike[str] | nib.Nifti1Image | nib.Nifti2Image | np.ndarray


def default_store() -> Path:
    """``$SYNNET_MODEL_STORE`` when set, else the repository's bundled ``model_store/``."""
    return read(StoreSettings).api_store()


@dataclass
class SynthesisResult(Mapping[Modality, nib.Nifti1Image]):
    """The synthesized images of one call, by target; ``result["t2f"]`` takes any alias.

    Attributes:
        images: one NIfTI image per target (NIfTI output), in raw units, with the first source's
            affine and header and ``descrip`` saying it is synthetic and which model made it.
        models: the model that produced each target.
        metrics: each target that had a truth, scored against it (as ``POST /synthesize`` scores it).
        warnings: what makes the inputs unlike the training data (:mod:`synnet.input_checks`).
        seconds: wall time of the call.
        files: each target as a file in the asked format (NIfTI, PNG or npy), as the service sends it.
    """

    images: dict[Modality, nib.Nifti1Image]
    models: dict[Modality, str]
    metrics: dict[Modality, MetricReport] = field(default_factory=dict)
    warnings: list[InputWarning] = field(default_factory=list)
    seconds: float = 0.0
    files: dict[Modality, EncodedImage] = field(default_factory=dict)

    @classmethod
    def of(cls, synthesis: Synthesis, seconds: float) -> SynthesisResult:
        """The result of a finished pipeline run."""
        targets = synthesis.targets
        return cls(
            images={t: to_nibabel(out.file.payload) for t, out in targets.items() if out.format == "nifti"},
            models={t: out.model for t, out in targets.items()},
            metrics={t: out.metrics for t, out in targets.items() if out.metrics is not None},
            warnings=synthesis.warnings,
            seconds=seconds,
            files={t: out.file for t, out in targets.items()},
        )

    def __getitem__(self, key: str | Modality) -> nib.Nifti1Image:
        try:
            target = parse_modality(key)
        except UnknownModalityError:
            raise KeyError(key) from None
        if target not in self.images and target in self.files:
            raise KeyError(f"{target.value} was written as {self.files[target].extension}, not NIfTI: see .files")
        try:
            return self.images[target]
        except KeyError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[Modality]:
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)


class Synthesizer:
    """Synthesize missing contrasts with the models of a model store.

    Models are read from the store when needed and kept: the first call that needs a model pays
    for loading and verifying it (a few seconds on a CPU), later calls do not.

    Args:
        store: the model store folder; None takes ``$SYNNET_MODEL_STORE`` when set, else the
            ``model_store/`` bundled with the repository, next to the ``synnet`` package (present
            in a checkout or an editable install).
        device: ``auto`` (CUDA when available, as the service chooses), ``cpu`` or ``cuda``.
        batch_size: slices per forward; None: the service's default on that device.
        crop: run the network on the brain's bounding box only, as the service does by default.

    Raises:
        StoreError: the store folder does not exist, or ``device`` is not on this machine.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
        *,
        batch_size: int | None = None,
        crop: bool = True,
    ) -> None:
        self.store = Path(store) if store is not None else default_store()
        if not self.store.is_dir():
            variable = env_name("model_store")
            raise StoreError(f"model store folder {self.store} not found; pass store= or set ${variable}")
        self.device = resolve_device(device)
        self.batch_size = batch_size or default_batch_size(self.device)
        self.crop = crop
        self.unavailable: list[Unavailable] = []
        self._folders: dict[str, Path] = {}
        self._manifests: dict[str, ModelManifest] = {}
        for folder in model_folders(self.store):
            try:
                manifest = read_manifest(folder)
            except StoreError as exc:
                self.unavailable.append(Unavailable(folder.name, str(exc)))
                continue
            self._folders[manifest.name], self._manifests[manifest.name] = folder, manifest
        self._evaluations = {name: EvaluationRecord.load_if_present(f) for name, f in self._folders.items()}
        self._models: dict[str, LoadedModel] = {}

    @property
    def manifests(self) -> list[ModelManifest]:
        """The manifests of the models this store can serve (sealed; loaded on first use)."""
        return list(self._manifests.values())

    @property
    def configurations(self) -> list[str]:
        """What can be asked for, e.g. ``["T1->T2", "T1,T1c->T2", ...]``."""
        return routing.available_configurations(self.manifests)

    def plan(self, src: Sequence[str | Modality], dst: str | Sequence[str | Modality]) -> list[routing.Assignment]:
        """The models that would serve ``src`` → ``dst``, by the service's rule (:func:`synnet.routing.plan`)."""
        targets = parse_modalities(dst)
        return routing.plan(parse_modalities(list(src)), targets, self.manifests, self._evaluations)

    def model(self, name: str) -> LoadedModel:
        """The loaded model ``name`` (loaded, verified and warmed up on first use)."""
        if name not in self._models:
            if name not in self._folders:
                raise StoreError(f"no model {name!r} in {self.store}; available: {', '.join(sorted(self._folders))}")
            self._models[name] = load_model(self._folders[name], self.device)
        return self._models[name]

    def synthesize(
        self,
        sources: Mapping[str | Modality, Image],
        dst: str | Modality | Sequence[str | Modality],
        truths: Mapping[str | Modality, Image] | None = None,
        *,
        mask: Image | None = None,
        format: OutputFormat | None = "nifti",
    ) -> SynthesisResult:
        """Synthesize ``dst`` from ``sources``.

        Args:
            sources: modality name or alias (``"T1"``, ``"t1ce"``, ``"t2f"``...) → NIfTI/PNG path,
                nibabel image or array (X, Y, Z) or (H, W). All of one shape (and one voxel grid when
                they carry affines); the first one's affine and header go on the results.
            dst: the targets: ``"T2"``, ``"T2,FLAIR"`` or a list.
            truths: target → its real image, to score the synthesis (:class:`synnet.scores.MetricReport`).
            mask: the brain mask (nonzero = brain), on the sources' grid; None: the union of the
                sources' nonzero voxels.
            format: ``"nifti"``: nibabel images (``result["T2"]``), and in ``result.files`` their
                uncompressed ``.nii`` files; ``"png"`` (2D inputs: model space on the grey range)
                or ``"npy"``: files only, as ``POST /synthesize?format=`` writes them; None: the
                input's format.

        Returns:
            A :class:`SynthesisResult`: a file (and for NIfTI an image) per target, the models
            used, the metrics and the input warnings.

        Raises:
            SynnetError: an unknown modality, overlapping src/dst, unreadable or mismatched images,
                no brain (``empty_image``), no model for the configuration (``no_model``, with the
                available configurations), PNG output of a volume.
        """
        started = time.perf_counter()
        src = parse_modalities([str(k) for k in sources])
        scored = {parse_modality(k): image for k, image in (truths or {}).items()}
        request = SynthesisRequest(
            src=src,
            dst=parse_modalities(dst if isinstance(dst, str) else [str(d) for d in dst]),
            sources={m: ImageInput(image, m.value) for m, image in zip(src, sources.values(), strict=True)},
            truths={t: ImageInput(image, f"truth {t.value}") for t, image in scored.items()},
            mask=ImageInput(mask, "mask") if mask is not None else None,
            format=format,
        )
        pipeline = Pipeline(
            request, lambda r: self._plan_and_load(r.src, r.dst), batch_size=self.batch_size, crop=self.crop,
            compress=False,
        )  # fmt: skip
        synthesis = run(pipeline, lambda manifest: self.model(manifest.name).forward)
        for warning in synthesis.warnings:
            logger.info("input warning: %s", warning)
        return SynthesisResult.of(synthesis, time.perf_counter() - started)

    def _plan_and_load(self, src: Sequence[Modality], dst: Sequence[Modality]) -> list[routing.Assignment]:
        """Route as the service does over the models that load: one that fails is dropped and the rest re-planned."""
        while True:
            assignments = routing.plan(src, dst, self.manifests, self._evaluations)
            try:
                for assignment in assignments:
                    self.model(assignment.name)
            except StoreError as exc:
                logger.error("model %s is unavailable: %s", assignment.name, exc)
                self.unavailable.append(Unavailable(assignment.name, str(exc)))
                del self._manifests[assignment.name]
                continue
            return assignments
