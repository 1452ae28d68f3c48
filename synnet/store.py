"""The model store: discover, validate, load, verify and warm up models; write model folders atomically.

``<store>/<name>/`` holds ``manifest.json`` (:class:`synnet.manifest.ModelManifest`), the
TorchScript file it names, and optionally ``evaluation.json`` (held-out scores written by
``training.evaluate``; kept apart so that scoring a model never rewrites the manifest it is
verified by). A model is usable only if its manifest parses, its digest
(:func:`synnet.manifest.model_digest`: the weights *and* every manifest field that changes
outputs) matches, TorchScript loads it, and a few warm-up forwards return finite
``(1, len(dst), H, W)``. Any other folder is reported with its reason, never skipped silently,
and never stops the other models from loading.

The service, evaluation, the CLI and the Python API all load models here, so one device and
memory-layout policy holds everywhere (:func:`resolve_device`, :func:`default_channels_last`).
Export and the Triton writer write through :func:`staged_folder`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from synnet.errors import SynnetError
from synnet.evaluation import EvaluationRecord
from synnet.manifest import MANIFEST_FILE, ModelManifest, model_digest

logger = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# TorchScript's profiling executor optimizes a graph on its second and third calls; paying that
# at load time (about a second for SynNet on a CPU) keeps it off the first user's request.
WARMUP_RUNS = 3


class StoreError(SynnetError):
    """A model folder that cannot be used, or a device setting this machine cannot honour."""

    code = "model_unavailable"


def resolve_device(setting: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    setting = str(setting)
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise StoreError(f"device {setting!r} was asked for but torch sees no CUDA device", code="bad_device")
    return torch.device(setting)


def default_channels_last(device: torch.device) -> bool:
    """Whether to feed the network NHWC tensors on ``device``.

    On CPU oneDNN's NHWC convolutions and pooling are much faster (SynNet T1→T2: 22 → 32 slices/s
    on 2 cores); on CUDA the exported NCHW weights made NHWC slower (measured on an H200).
    """
    return device.type == "cpu"


# Slices per forward: per-slice throughput on CPU does not rise with the batch, while a GPU needs
# large batches to be kept busy. One policy for the service, the API and the CLI: the same batches
# run the same kernels, hence give the same voxels everywhere.
DEFAULT_BATCH_SIZE = {"cpu": 4, "cuda": 32}


def default_batch_size(device: torch.device) -> int:
    """Slices per forward on ``device`` when nothing else is asked for."""
    return DEFAULT_BATCH_SIZE.get(device.type, DEFAULT_BATCH_SIZE["cpu"])


def as_channels_last(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) with NHWC strides that the convolutions recognise, also when C == 1.

    With one channel an NCHW tensor already counts as channels_last-contiguous, so
    ``x.contiguous(memory_format=torch.channels_last)`` returns it unchanged; its strides then
    read as NCHW, the first convolution (whose frozen weights are NCHW) answers NCHW, and so does
    the rest of the network: a single-source SynNet ran 1.4× slower on CPU, mostly in NCHW max-pooling.
    """
    if x.is_contiguous(memory_format=torch.channels_last) and x.stride(1) == 1:
        return x
    return torch.empty_like(x, memory_format=torch.channels_last).copy_(x)


@dataclass
class LoadedModel:
    """A verified TorchScript model and how to run it; ``forward`` is the one way to call it."""

    manifest: ModelManifest
    module: torch.jit.ScriptModule
    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = True
    evaluation: EvaluationRecord | None = None

    @property
    def name(self) -> str:
        return self.manifest.name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, manifest.input_channels, H, W) float32 in model space → (B, len(dst), H, W) float32 on the CPU.

        For an any-to-any model a channel that is NaN (:func:`synnet.inference.model_input`: a
        source not given) goes to the network as zeros with ``present = 0`` for that sample.
        """
        with torch.inference_mode():
            x = x.to(self.device, non_blocking=True)
            present = None
            if self.manifest.any_to_any:
                present = (~torch.isnan(x).flatten(2).any(dim=2)).to(torch.float32)
                x = torch.nan_to_num(x, nan=0.0)
            if self.channels_last:
                x = as_channels_last(x)
            with self._autocast():
                y = self.module(x) if present is None else self.module(x, present)
            return y.float().cpu().contiguous()

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.autocast_dtype is None or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)


@dataclass(frozen=True)
class Unavailable:
    """A store folder that is not served, and why (shown by /readyz, /models and the CLI)."""

    name: str
    reason: str


class ModelStore:
    """The usable models of a store by name, plus the folders that could not be used."""

    def __init__(self, models: dict[str, LoadedModel], unavailable: list[Unavailable]) -> None:
        self.models = models
        self.unavailable = unavailable

    def __iter__(self) -> Iterator[LoadedModel]:
        return iter(self.models.values())

    def __len__(self) -> int:
        return len(self.models)

    @property
    def manifests(self) -> list[ModelManifest]:
        return [m.manifest for m in self.models.values()]

    @property
    def evaluations(self) -> dict[str, EvaluationRecord | None]:
        """Held-out scores by model name (``evaluation.json``), as :func:`synnet.routing.plan` compares them."""
        return {name: m.evaluation for name, m in self.models.items()}

    def get(self, name: str) -> LoadedModel:
        """The model called ``name``; a :class:`StoreError` naming what is there otherwise."""
        if name in self.models:
            return self.models[name]
        why = next((u.reason for u in self.unavailable if u.name == name), None)
        if why is not None:
            raise StoreError(f"model {name!r} is unavailable: {why}")
        raise StoreError(f"no model {name!r} in the store; available: {', '.join(sorted(self.models)) or 'none'}")

    @classmethod
    def load(
        cls,
        store: str | Path,
        device: str | torch.device = "auto",
        *,
        autocast: str = "none",
        channels_last: bool | None = None,
        names: list[str] | None = None,
    ) -> ModelStore:
        """Load every model folder under ``store`` (or only ``names``); failures are recorded, never raised.

        Args:
            device: ``auto``, ``cpu``, ``cuda`` or a torch device.
            autocast: ``none``, ``bf16`` or ``fp16``; honoured on CUDA only.
            channels_last: NHWC inputs; None follows :func:`default_channels_last`.
        """
        device = resolve_device(device)
        layout = default_channels_last(device) if channels_last is None else channels_last
        autocast_dtype = AUTOCAST_DTYPES.get(autocast)
        if autocast_dtype is not None and device.type != "cuda":
            logger.warning("autocast %s is honoured only on CUDA; running float32 on %s", autocast, device)
            autocast_dtype = None
        store = Path(store)
        if not store.is_dir():
            logger.error("model store %s does not exist", store)
            return cls({}, [Unavailable("model_store", f"model store folder {store} not found")])
        models: dict[str, LoadedModel] = {}
        unavailable: list[Unavailable] = []
        for folder in model_folders(store):
            if names is not None and folder.name not in names:
                continue
            started = time.perf_counter()
            try:
                model = load_model(folder, device, autocast_dtype=autocast_dtype, channels_last=layout)
                if model.name in models:
                    raise StoreError(f"duplicate model name {model.name!r} (also in another folder)")
            except Exception as exc:  # a broken model must never stop the others
                reason = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
                logger.error("model %s is unavailable: %s", folder.name, reason)
                unavailable.append(Unavailable(folder.name, reason.splitlines()[0][:300]))
                continue
            models[model.name] = model
            logger.info(
                "loaded model %s (%s -> %s) on %s in %.2fs", model.name, ",".join(model.manifest.src),
                ",".join(model.manifest.dst), device, time.perf_counter() - started,
            )
        return cls(models, unavailable)


def model_folders(store: Path) -> list[Path]:
    """Every folder of ``store`` that should hold a model; hidden ones (staging, ``.git``) excluded."""
    return sorted(p for p in store.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_manifest(folder: Path) -> ModelManifest:
    """The folder's manifest, checked against its model file (:func:`synnet.manifest.model_digest`)."""
    if not (folder / MANIFEST_FILE).is_file():
        raise StoreError(f"no {MANIFEST_FILE} in {folder.name}/ (every model folder needs one)")
    try:
        manifest = ModelManifest.load(folder)
    except Exception as exc:
        raise StoreError(f"invalid manifest: {str(exc).splitlines()[0]}") from exc
    model_path = folder / manifest.model_file
    if not model_path.is_file():
        raise StoreError(f"model file {manifest.model_file} not found")
    digest = model_digest(model_path, manifest)
    if digest != manifest.sha256:
        raise StoreError(
            f"sha256 mismatch: model file and output fields give {digest[:12]}…, manifest says {manifest.sha256[:12]}… "
            "(the weights, src/dst order, normalization, output reference or input spec were changed after export)"
        )
    return manifest


def load_model(
    folder: str | Path,
    device: str | torch.device = "auto",
    *,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool | None = None,
) -> LoadedModel:
    """Load, verify and warm up one model folder; :class:`StoreError` says what is wrong with it."""
    folder = Path(folder)
    device = resolve_device(device)
    manifest = read_manifest(folder)
    missing = [m.value for m in manifest.dst if m not in manifest.output_reference]
    if missing:  # outputs could not be mapped back to raw units
        raise StoreError(f"manifest has no output_reference for {', '.join(missing)}")
    try:
        with warnings.catch_warnings():  # TorchScript is this project's deliberate export format
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=DeprecationWarning)
            module = torch.jit.load(str(folder / manifest.model_file), map_location=device)
    except Exception as exc:
        raise StoreError(f"TorchScript could not load {manifest.model_file}: {str(exc).splitlines()[0]}") from exc
    module.eval()
    layout = default_channels_last(device) if channels_last is None else channels_last
    evaluation = EvaluationRecord.load_if_present(folder)
    model = LoadedModel(manifest, module, device, autocast_dtype, layout, evaluation)
    _warm_up(model)
    return model


def _warm_up(model: LoadedModel) -> None:
    """A few forwards on a small input: prove the model matches its manifest and pay lazy init costs."""
    manifest = model.manifest
    side = max(manifest.input.min_size, manifest.input.multiple_of, 32)
    side += (-side) % manifest.input.multiple_of
    x = torch.rand(1, manifest.input_channels, side, side, generator=torch.Generator().manual_seed(0))
    if manifest.any_to_any:  # one source given: every other decoder arm runs
        x[:, 1:] = float("nan")
    try:
        for _ in range(WARMUP_RUNS):
            y = model.forward(x)
    except Exception as exc:
        shape = (1, manifest.input_channels, side, side)
        raise StoreError(f"warm-up forward failed for input {shape}: {str(exc).splitlines()[0]}") from exc
    expected = (1, len(manifest.dst), side, side)
    if tuple(y.shape) != expected:
        raise StoreError(f"model returns shape {tuple(y.shape)} for a {expected} output per the manifest")
    if not torch.isfinite(y).all():
        raise StoreError("warm-up output contains NaN or Inf")


@contextlib.contextmanager
def staged_folder(parent: str | Path, name: str) -> Iterator[Path]:
    """A temporary folder beside ``parent/name`` that replaces it when the block succeeds.

    A reader (the service, a Triton server polling its repository) sees the old folder or the
    new one, never a half-written one; a failure leaves the old folder untouched.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / name
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    try:
        yield staging
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
