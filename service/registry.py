"""The model registry: every model in the store, loaded once, checked, warmed up.

``model_store/<dir>/manifest.json`` describes ``model_store/<dir>/model.pt``. A model is served
only if its manifest parses, its file's sha256 matches the manifest, TorchScript loads it onto
the device and one warm-up forward returns ``(1, len(dst), H, W)`` finite values. Anything else
marks that model unavailable with the reason; it never stops the others from serving.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from synnet.manifest import MANIFEST_FILE, ModelManifest, sha256_file

logger = logging.getLogger(__name__)

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
# TorchScript's profiling executor optimizes a graph on its second and third calls; paying that
# here (about a second for SynNet on a CPU) keeps it off the first user's request.
WARMUP_RUNS = 3


class ServiceConfigError(RuntimeError):
    """A setting that cannot work on this machine (e.g. device=cuda without a GPU)."""


def resolve_device(setting: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a configuration error."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ServiceConfigError("SYNNET_DEVICE=cuda but torch sees no CUDA device")
    return torch.device(setting)


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
    """A verified TorchScript model and how to run it.

    ``forward`` is what the batcher calls in the inference thread.
    """

    manifest: ModelManifest
    module: torch.jit.ScriptModule
    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = True

    @property
    def name(self) -> str:
        return self.manifest.name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, len(src), H, W) float32 in model space → (B, len(dst), H, W) float32 on the CPU."""
        with torch.inference_mode():
            x = x.to(self.device, non_blocking=True)
            if self.channels_last:
                x = as_channels_last(x)
            with self._autocast():
                y = self.module(x)
            return y.float().cpu().contiguous()

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.autocast_dtype is None or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)


@dataclass(frozen=True)
class Unavailable:
    """A model that is not served, and why (shown by /readyz and /models)."""

    name: str
    reason: str


class ModelLoadError(Exception):
    pass


class ModelRegistry:
    """The served models by name, plus the ones that failed to load."""

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

    @classmethod
    def load(
        cls,
        store: Path,
        device: torch.device,
        *,
        autocast: str = "none",
        channels_last: bool = True,
    ) -> ModelRegistry:
        """Load every model under ``store``; failures are recorded, never raised."""
        autocast_dtype = _AUTOCAST.get(autocast)
        if autocast_dtype is not None and device.type != "cuda":
            logger.warning("autocast %s is honoured only on CUDA; running float32 on %s", autocast, device)
            autocast_dtype = None
        models: dict[str, LoadedModel] = {}
        unavailable: list[Unavailable] = []
        if not store.is_dir():
            logger.error("model store %s does not exist", store)
            return cls(models, [Unavailable("model_store", "model store folder not found")])
        for manifest_path in sorted(store.glob(f"*/{MANIFEST_FILE}")):
            label = manifest_path.parent.name
            started = time.perf_counter()
            try:
                model = _load_one(manifest_path.parent, device, autocast_dtype, channels_last)
                if model.name in models:
                    raise ModelLoadError(f"duplicate model name {model.name!r} (also in another folder)")
            except Exception as exc:  # a broken model must never stop the others
                reason = str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
                logger.error("model %s is unavailable: %s", label, reason)
                unavailable.append(Unavailable(label, reason.splitlines()[0][:300]))
                continue
            models[model.name] = model
            logger.info(
                "loaded model %s (%s -> %s) on %s in %.2fs", model.name,
                ",".join(model.manifest.src), ",".join(model.manifest.dst), device, time.perf_counter() - started,
            )
        return cls(models, unavailable)


def _load_one(
    folder: Path, device: torch.device, autocast_dtype: torch.dtype | None, channels_last: bool
) -> LoadedModel:
    try:
        manifest = ModelManifest.load(folder)
    except Exception as exc:
        raise ModelLoadError(f"invalid manifest: {str(exc).splitlines()[0]}") from exc
    missing = [m.value for m in manifest.dst if m not in manifest.output_reference]
    if missing:
        raise ModelLoadError(f"manifest has no output_reference for {', '.join(missing)}")
    model_path = folder / manifest.model_file
    if not model_path.is_file():
        raise ModelLoadError(f"model file {manifest.model_file} not found")
    digest = sha256_file(model_path)
    if digest != manifest.sha256:
        raise ModelLoadError(f"sha256 mismatch: file has {digest[:12]}…, manifest says {manifest.sha256[:12]}…")
    try:
        with warnings.catch_warnings():  # TorchScript is this project's deliberate export format
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=DeprecationWarning)
            module = torch.jit.load(str(model_path), map_location=device)
    except Exception as exc:
        raise ModelLoadError(f"TorchScript could not load {manifest.model_file}: {str(exc).splitlines()[0]}") from exc
    module.eval()
    model = LoadedModel(manifest, module, device, autocast_dtype, channels_last)
    _warm_up(model)
    return model


def _warm_up(model: LoadedModel) -> None:
    """A few forwards on a small input: prove the model matches its manifest and pay lazy init costs."""
    manifest = model.manifest
    side = max(manifest.input.min_size, manifest.input.multiple_of, 32)
    side += (-side) % manifest.input.multiple_of
    x = torch.rand(1, len(manifest.src), side, side, generator=torch.Generator().manual_seed(0))
    try:
        for _ in range(WARMUP_RUNS):
            y = model.forward(x)
    except Exception as exc:
        raise ModelLoadError(
            f"warm-up forward failed for input (1, {len(manifest.src)}, {side}, {side}): {str(exc).splitlines()[0]}"
        ) from exc
    expected = (1, len(manifest.dst), side, side)
    if tuple(y.shape) != expected:
        raise ModelLoadError(f"model returns shape {tuple(y.shape)} for a {expected} output per the manifest")
    if not torch.isfinite(y).all():
        raise ModelLoadError("warm-up output contains NaN or Inf")
