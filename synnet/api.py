"""The Python API: synthesize missing contrasts in a script or a notebook, without a server.

    from synnet import Synthesizer
    s = Synthesizer()                                      # the bundled models, GPU when there is one
    out = s.synthesize({"T1": "a_t1.nii.gz", "T1c": img}, dst="T2")
    out["T2"].to_filename("synthetic_t2.nii.gz")

It runs the service's steps with the service's functions: :func:`synnet.routing.plan` picks the
models, :func:`synnet.inference.synthesize` runs the volume pipeline, the result is written as the
service writes it (:func:`synnet.imageio.write_nifti`, raw units by
:func:`synnet.inference.to_raw_units`), scored by :func:`synnet.metrics.compute_metrics` and
checked by :func:`synnet.input_checks.check_inputs`. The same inputs give the same voxels here,
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
from synnet.errors import SynnetError, UnknownModalityError
from synnet.evaluation import EvaluationRecord
from synnet.imageio import ImageMeta, read_image, write_nifti
from synnet.inference import check_size, synthesize, synthetic_description, to_raw_units
from synnet.input_checks import InputWarning, check_inputs
from synnet.manifest import ModelManifest
from synnet.metrics import compute_metrics
from synnet.modalities import Modality, check_disjoint, format_modalities, parse_modalities, parse_modality
from synnet.normalization import brain_mask
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
        images: one NIfTI image per target, in raw units, with the first source's affine and header
            and ``descrip`` saying it is synthetic and which model made it.
        models: the model that produced each target.
        metrics: each target that had a truth, scored against it (as ``POST /synthesize`` scores it).
        warnings: what makes the inputs unlike the training data (:mod:`synnet.input_checks`).
        seconds: wall time of the call.
    """

    images: dict[Modality, nib.Nifti1Image]
    models: dict[Modality, str]
    metrics: dict[Modality, MetricReport] = field(default_factory=dict)
    warnings: list[InputWarning] = field(default_factory=list)
    seconds: float = 0.0

    def __getitem__(self, key: str | Modality) -> nib.Nifti1Image:
        try:
            return self.images[parse_modality(key)]
        except UnknownModalityError:
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
    ) -> SynthesisResult:
        """Synthesize ``dst`` from ``sources``.

        Args:
            sources: modality name or alias (``"T1"``, ``"t1ce"``, ``"t2f"``...) → NIfTI/PNG path,
                nibabel image or array (X, Y, Z) or (H, W). All of one shape (and one voxel grid when
                they carry affines); the first one's affine and header go on the results.
            dst: the targets: ``"T2"``, ``"T2,FLAIR"`` or a list.
            truths: target → its real image, to score the synthesis (:class:`synnet.scores.MetricReport`).

        Returns:
            A :class:`SynthesisResult`: a NIfTI image per target, the models used, the metrics and
            the input warnings.

        Raises:
            SynnetError: an unknown modality, overlapping src/dst, unreadable or mismatched images,
                no brain (``empty_image``), no model for the configuration (``no_model``, with the
                available configurations).
        """
        started = time.perf_counter()
        src = parse_modalities([str(k) for k in sources])
        targets = parse_modalities(dst if isinstance(dst, str) else [str(d) for d in dst])
        check_disjoint(src, targets)
        read = {m: _read(image, m.value) for m, image in zip(src, sources.values(), strict=True)}
        images = {m: array for m, (array, _) in read.items()}
        meta = read[src[0]][1]
        for modality, (array, other) in read.items():
            _check_same_grid(f"source {modality.value}", array, other, f"source {src[0].value}", images[src[0]], meta)
        truth_images: dict[Modality, np.ndarray] = {}
        for key, image in (truths or {}).items():
            target = parse_modality(key)
            if target not in targets:
                raise SynnetError(
                    f"truth for {target.value} given, but it is not a target (dst={format_modalities(targets)})",
                    code="unexpected_part",
                )
            array, other = _read(image, f"truth {target.value}")
            _check_same_grid(f"truth {target.value}", array, other, f"source {src[0].value}", images[src[0]], meta)
            truth_images[target] = array
        mask = brain_mask(list(images.values()))
        if not mask.any():
            raise SynnetError("no brain to synthesize: every source image is zero everywhere", code="empty_image")
        warnings = check_inputs(images, meta)
        for warning in warnings:
            logger.info("input warning: %s", warning)
        result = SynthesisResult(images={}, models={}, warnings=warnings)
        for assignment in self._plan_and_load(src, targets):
            manifest = assignment.manifest
            check_size(mask.shape, manifest)
            y, _ = synthesize(
                self.model(manifest.name).forward, images, mask, manifest, batch_size=self.batch_size, crop=self.crop
            )
            for target in assignment.targets:
                pred = y[manifest.dst.index(target)].reshape(mask.shape)
                raw = to_raw_units(pred, mask, manifest, target)
                result.images[target] = _as_nifti(raw, meta, synthetic_description(target, manifest))
                result.models[target] = manifest.name
                if target in truth_images:
                    result.metrics[target] = compute_metrics(pred, truth_images[target], mask, manifest)
        result.images = {t: result.images[t] for t in targets}
        result.seconds = time.perf_counter() - started
        return result

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


def _read(image: Image, label: str) -> tuple[np.ndarray, ImageMeta | None]:
    """An input as ``(float32 array, meta)``; files through :func:`synnet.imageio.read_image`, as uploads."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(Path(image))
    if isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        shape = tuple(int(s) for s in image.shape)
        data_shape = shape[:3] if len(shape) == 4 and shape[3] == 1 else shape
        array = np.asarray(image.get_fdata(dtype=np.float32)).reshape(data_shape)
        meta = ImageMeta(
            format="nifti",
            original_shape=shape,
            dtype=str(image.get_data_dtype()),
            affine=np.asarray(image.affine, dtype=np.float64),
            header=image.header.copy(),
            compressed=True,
        )
        return _checked(array, label), meta
    if isinstance(image, np.ndarray):
        return _checked(np.asarray(image, dtype=np.float32), label), None
    raise SynnetError(
        f"{label}: expected a path, a nibabel image or a numpy array, got {type(image).__name__}", code="bad_input"
    )


def _checked(array: np.ndarray, label: str) -> np.ndarray:
    if array.ndim not in (2, 3):
        raise SynnetError(f"{label} has shape {array.shape}; expected a 2D image or a 3D volume", code="bad_dimensions")
    if not np.isfinite(array).all():
        raise SynnetError(f"{label} contains {int((~np.isfinite(array)).sum())} NaN or Inf values", code="non_finite")
    return array


def _check_same_grid(
    name: str,
    array: np.ndarray,
    meta: ImageMeta | None,
    ref_name: str,
    reference: np.ndarray,
    ref_meta: ImageMeta | None,
) -> None:
    if array.shape != reference.shape:
        raise SynnetError(
            f"{name} has shape {array.shape} but {ref_name} has shape {reference.shape}; "
            "all images must have the same shape",
            code="shape_mismatch",
        )
    both_nifti = meta is not None and ref_meta is not None and meta.format == ref_meta.format == "nifti"
    if both_nifti and not meta.same_space(ref_meta):  # type: ignore[union-attr,arg-type]
        raise SynnetError(
            f"{name} and {ref_name} have the same shape but different affines (voxel grids); "
            "register the images to one space first",
            code="affine_mismatch",
        )


def _as_nifti(raw: np.ndarray, meta: ImageMeta | None, description: str) -> nib.Nifti1Image:
    """The service's NIfTI encoding of a result (:func:`synnet.imageio.write_nifti`), as a nibabel image."""
    payload = write_nifti(
        raw, meta if meta is not None and meta.format == "nifti" else None, description=description, compress=False
    )
    image_class = nib.Nifti2Image if meta is not None and isinstance(meta.header, nib.Nifti2Header) else nib.Nifti1Image
    return image_class.from_bytes(payload)
