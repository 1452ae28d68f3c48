"""The model store: discover, validate, load, verify and warm up models; write model folders atomically.

``<store>/<name>/`` holds ``manifest.json`` (:class:`synnet.manifest.ModelManifest`), the
TorchScript file it names, the exported program beside it (``model.pt2``, when the manifest names
one), and optionally ``evaluation.json`` (held-out scores written by ``training.evaluate``; kept
apart so that scoring a model never rewrites the manifest it is verified by). A model is usable
only if its manifest parses, its digest (:func:`synnet.manifest.model_digest`: the weights *and*
every manifest field that changes outputs) matches, the format asked for loads it, and a few
warm-up forwards return finite ``(1, len(dst), H, W)``. Any other folder is reported with its
reason, never skipped silently, and never stops the other models from loading.

How a model runs is decided here once, for the service, evaluation, the CLI and the Python API:
the device and memory layout (:func:`resolve_device`, :func:`default_channels_last`), the file
format (:data:`MODEL_FORMATS`: TorchScript, the default, or the exported program), compilation
(:mod:`synnet.compiled`, exported programs only) and precision (:mod:`synnet.precision`: bf16 only on
hardware that has it and for models whose measured cost allows it). Export and Triton use :func:`staged_folder`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from synnet.compiled import WARMUP_SHAPES, CompileReport, compile_program
from synnet.errors import SynnetError
from synnet.evaluation import EvaluationRecord
from synnet.manifest import MANIFEST_FILE, ModelManifest, model_digest
from synnet.precision import bf16_refusal, check_precision
from synnet.program import load_program

logger = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# The files a model can be served from: model.pt (TorchScript, the default) or model.pt2 (torch.export).
MODEL_FORMATS = ("torchscript", "export")
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
class Serving:
    """How a loaded model runs, and why where it runs otherwise than asked (shown by /readyz)."""

    model_format: str = "torchscript"
    precision: str = "fp32"
    compiled: CompileReport | None = None
    load_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class LoadedModel:
    """A verified model and how to run it; ``forward`` is the one way to call it."""

    manifest: ModelManifest
    module: Callable[..., torch.Tensor]
    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = True
    evaluation: EvaluationRecord | None = None
    serving: Serving = field(default_factory=Serving)

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
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


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
        model_format: str = "torchscript",
        precision: str = "fp32",
        compile: bool | Collection[str] = False,
    ) -> ModelStore:
        """Load every model folder under ``store`` (or only ``names``); failures are recorded, never raised.

        Args:
            device: ``auto``, ``cpu``, ``cuda`` or a torch device.
            autocast: ``none``, ``bf16`` or ``fp16``; honoured on CUDA only.
            channels_last: NHWC inputs; None follows :func:`default_channels_last`.
            model_format: ``torchscript`` (model.pt) or ``export`` (model.pt2).
            precision: ``fp32`` or ``bf16`` (see :mod:`synnet.precision`).
            compile: serve the exported programs through ``torch.compile``, compiled here: every model's
                (True), or the named models' (on two cores a flip-averaged model takes minutes).

        Raises:
            StoreError: settings no model could be served with (bf16 on a CPU without it: ``bad_precision``).
        """
        device = resolve_device(device)
        check_serving(device, model_format, precision, compile, store=Path(store))
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
            try:
                model = load_model(
                    folder, device, autocast_dtype=autocast_dtype, channels_last=layout,
                    model_format=model_format, precision=precision, compile=compiles(compile, folder.name),
                )  # fmt: skip
                if model.name in models:
                    raise StoreError(f"duplicate model name {model.name!r} (also in another folder)")
            except Exception as exc:  # a broken model must never stop the others
                reason = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
                logger.error("model %s is unavailable: %s", folder.name, reason)
                unavailable.append(Unavailable(folder.name, reason.splitlines()[0][:300]))
                continue
            models[model.name] = model
            compiled = model.serving.compiled
            logger.info(
                "loaded model %s (%s -> %s) on %s from %s, %s%s in %.2fs", model.name, ",".join(model.manifest.src),
                ",".join(model.manifest.dst), device, model.serving.model_format, model.serving.precision,
                f", compiled in {compiled.seconds:.1f}s ({compiled.warmup_graphs} graphs)" if compiled else "",
                model.serving.load_seconds,
            )
            for note in model.serving.notes:
                logger.warning("model %s: %s", model.name, note)
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
    if manifest.exported_program is not None and not (folder / manifest.exported_program).is_file():
        raise StoreError(f"exported program {manifest.exported_program} not found (the manifest names it)")
    digest = model_digest(model_path, manifest)
    if digest != manifest.sha256:
        raise StoreError(
            f"sha256 mismatch: model file and output fields give {digest[:12]}…, manifest says {manifest.sha256[:12]}… "
            "(the weights, the exported program, src/dst order, normalization, output reference or input spec "
            "were changed after export)"
        )
    return manifest


def compiles(compile: bool | Collection[str], name: str) -> bool:
    """Whether the model ``name`` is compiled under the ``compile`` setting (all, none, or the named ones)."""
    return compile if isinstance(compile, bool) else name in compile


def check_serving(
    device: torch.device, model_format: str, precision: str, compile: bool | Collection[str], store: Path | None = None
) -> None:
    """Refuse settings no model could be served with, naming them (before any model is loaded).

    With ``store``, models named in ``compile`` must be folders of it.
    """
    if model_format not in MODEL_FORMATS:
        raise StoreError(f"model format {model_format!r} is not one of {', '.join(MODEL_FORMATS)}", code="bad_setting")
    if compile and model_format != "export":
        raise StoreError(
            "compiling needs the exported programs (model format 'export'): torch.compile cannot trace TorchScript",
            code="bad_setting",
        )
    if precision == "bf16" and model_format != "export":
        raise StoreError(
            "bf16 serves from the exported programs (model format 'export'): their bf16 cost is the one recorded, "
            "and TorchScript ran SynNet 8x slower under bf16 autocast than in fp32",
            code="bad_setting",
        )
    if store is not None and not isinstance(compile, bool) and store.is_dir():
        held = {folder.name for folder in model_folders(store)}
        unknown = sorted(set(compile) - held)
        if unknown:
            raise StoreError(
                f"asked to compile {', '.join(unknown)}, which the store {store} does not hold; "
                f"it holds {', '.join(sorted(held)) or 'no model'}",
                code="bad_setting",
            )
    check_precision(precision, device)


def load_model(
    folder: str | Path,
    device: str | torch.device = "auto",
    *,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool | None = None,
    model_format: str = "torchscript",
    precision: str = "fp32",
    compile: bool = False,
) -> LoadedModel:
    """Load, verify and warm up one model folder; :class:`StoreError` says what is wrong with it.

    ``precision="bf16"`` runs the model under bf16 autocast only where its recorded cost allows
    (:func:`synnet.precision.bf16_refusal`); otherwise it serves fp32 and ``serving.notes`` says why.
    """
    started = time.perf_counter()
    folder = Path(folder)
    device = resolve_device(device)
    check_serving(device, model_format, precision, compile)
    manifest = read_manifest(folder)
    missing = [m.value for m in manifest.dst if m not in manifest.output_reference]
    if missing:  # outputs could not be mapped back to raw units
        raise StoreError(f"manifest has no output_reference for {', '.join(missing)}")
    module = _load_module(folder, manifest, device, model_format)
    layout = default_channels_last(device) if channels_last is None else channels_last
    evaluation = EvaluationRecord.load_if_present(folder)
    serving = Serving(model_format=model_format)
    if precision == "bf16":
        refusal = bf16_refusal(evaluation, manifest.sha256)
        if refusal is None:
            autocast_dtype = torch.bfloat16
        else:
            serving.notes.append(f"serves fp32: {refusal}")
    # what runs, also where SYNNET_AUTOCAST_DTYPE asked for mixed precision on CUDA
    serving.precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(autocast_dtype, "fp32")
    model = LoadedModel(manifest, module, device, autocast_dtype, layout, evaluation, serving)
    _warm_up(model)
    if compile:
        _compile(model)
    serving.load_seconds = time.perf_counter() - started
    return model


def _load_module(
    folder: Path, manifest: ModelManifest, device: torch.device, model_format: str
) -> Callable[..., torch.Tensor]:
    if model_format == "export":
        if manifest.exported_program is None:
            raise StoreError(
                "no exported program (model.pt2) beside its TorchScript file; "
                f"python -m training.export --programs --out {folder.parent} writes one"
            )
        try:
            return load_program(folder / manifest.exported_program, device)
        except Exception as exc:
            why = str(exc).splitlines()[0]
            raise StoreError(f"torch.export could not load {manifest.exported_program}: {why}") from exc
    try:
        with warnings.catch_warnings():  # TorchScript is this project's deliberate default format
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=DeprecationWarning)
            module = torch.jit.load(str(folder / manifest.model_file), map_location=device)
    except Exception as exc:
        raise StoreError(f"TorchScript could not load {manifest.model_file}: {str(exc).splitlines()[0]}") from exc
    module.eval()
    return module


def _compile(model: LoadedModel) -> None:
    """Serve ``model`` through ``torch.compile``, compiled now; uncompiled, with a note, where inductor fails."""
    program = model.module

    def warm_up(compiled: Callable[..., torch.Tensor]) -> None:
        model.module = compiled
        for shape in WARMUP_SHAPES:
            _warm_up(model, shape)

    try:
        model.module, model.serving.compiled = compile_program(program, warm_up)
    except Exception as exc:  # inductor reports what it cannot lower with many types
        model.module = program
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        model.serving.notes.append(f"serves uncompiled: torch.compile failed ({type(exc).__name__}: {reason})")


def _warm_up(model: LoadedModel, size: tuple[int, int, int] | None = None) -> None:
    """A few forwards on a small input (or one of ``size`` = (batch, H, W)): prove the model matches its
    manifest and pay lazy init costs."""
    manifest = model.manifest
    if size is None:
        side = max(manifest.input.min_size, manifest.input.multiple_of, 32)
        side += (-side) % manifest.input.multiple_of
        size = (1, side, side)
    shape = (size[0], manifest.input_channels, size[1], size[2])
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    if manifest.any_to_any:  # one source given: every other decoder arm runs
        x[:, 1:] = float("nan")
    try:
        for _ in range(WARMUP_RUNS):
            y = model.forward(x)
    except Exception as exc:
        raise StoreError(f"warm-up forward failed for input {shape}: {str(exc).splitlines()[0]}") from exc
    expected = (size[0], len(manifest.dst), size[1], size[2])
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
