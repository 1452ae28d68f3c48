"""Settings of a training run: ``FitConfig``, grouped by what each part of the run needs.

``FitConfig`` holds what to synthesize (``src``, ``dst``) and six frozen groups: :class:`DataConfig`
(cases, split, windows, augmentation), :class:`ModelConfig` (network, loss, warm start),
:class:`OptimConfig`, :class:`BudgetConfig` (when training stops, see
:mod:`training.fitting.budget`), :class:`RuntimeConfig` (seed, device, precision, workers) and
:class:`OutputConfig`. Each part of the run takes only the group it reads.

On disk a config is one flat dict keyed by the command-line option names (``"data"``, ``"lr"``,
``"time_limit"``...): checkpoints and manifests have always stored it so, and ``--resume``
compares it option by option. :meth:`FitConfig.to_json`, :meth:`FitConfig.from_json` and
:meth:`FitConfig.with_options` translate between the flat names and the groups. The command line
itself is :mod:`training.fitting.cli`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from synnet.errors import SynnetError
from synnet.modalities import format_modalities, parse_modalities
from synnet.settings import read
from synnet.settings.training import DEFAULT_TRAINING_CACHE, TrainingSettings


def training_cache_dir(config: DataConfig) -> str:
    """The training cache folder of a run: ``--cache-dir``, else ``$SYNNET_TRAINING_CACHE``, else data/cache."""
    return config.cache_dir or str(read(TrainingSettings).training_cache or DEFAULT_TRAINING_CACHE)


class ConfigError(SynnetError):
    """A command-line option with an unusable value."""

    code = "invalid_option"


def _option(default: Any, name: str) -> Any:
    """A group field whose flat (command-line) name differs from its attribute name."""
    return field(default=default, metadata={"option": name})


@dataclass(frozen=True)
class DataConfig:
    """Which cases, how they are split by subject, and the windows the network is trained on."""

    folder: str | None = _option(None, "data")  # a BraTS folder; None: generated phantoms
    extra_data: str | None = None  # comma-separated folders of more training cases (training.fitting.data)
    cache_dir: str | None = None  # the training cache (training.data.cache); None: training_cache_dir()
    cache_memory: int = 0  # MB of recently read slices each process keeps (0: read the cache every time)
    prepare_workers: int | None = None  # processes preparing the cache (None: every core)
    strict_data: bool = False  # a case that cannot be read is an error, not skipped
    phantom_cases: int = 8
    phantom_dir: str = "data/phantom"
    val_cases: str = "1"
    test_cases: str = "0"
    split_seed: int = 0
    min_brain_fraction: float = 0.05
    val_max_slices: int = 256  # a seeded choice of validation slices over all validation cases
    slice_size: int = 160
    context_slices: int = 0  # 2.5D: axial neighbours on each side stacked with every source slice (synnet.neighbours)
    target_anchor: str = "percentile"  # targets scaled like the sources, or "median" (training.data.slices)
    augment: bool = True
    max_rotation: float = 10.0
    max_scale: float = 0.1
    intensity_augment: bool = False  # training.data.intensity: re-render the sources as other sites would


@dataclass(frozen=True)
class ModelConfig:
    """The network, its loss, and the checkpoint it is warm-started from."""

    arch: str = "synnet"
    features: int = 64
    depth: int = 4
    fusion: str | None = None  # --arch unified only: how present arms combine (None: the builder's default)
    loss: str = "joint"
    lambdas: tuple[float, ...] | None = None
    mask_loss: bool = False
    tumour_weight: float = 1.0  # loss weight inside the tumour (seg > 0) relative to the rest of the brain
    histogram_weight: float = 0.0  # joint losses: weight of the intensity-distribution term (0: none)
    histogram_bands: tuple[float, ...] | None = None  # that term band by band between these percentiles (None: by rank)
    init: str | None = None

    @property
    def weighs_tumour(self) -> bool:
        """Whether the loss weighs the tumour apart (then the training cases' segmentations are read)."""
        return self.tumour_weight != 1.0


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer, learning-rate schedule and batch size (the paper's SGD by default)."""

    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "constant"
    batch_size: int = 32


@dataclass(frozen=True)
class BudgetConfig:
    """How long to train: whichever of the limits is reached first ends the run."""

    epochs: int = 20
    steps_per_epoch: int | None = None
    max_steps: int | None = None
    time_limit: float | None = None


@dataclass(frozen=True)
class RuntimeConfig:
    """Seed and the machine the run uses; all but the seed may change when a run is resumed."""

    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    channels_last: str = "auto"
    workers: int = 0


@dataclass(frozen=True)
class OutputConfig:
    """Where the model is exported and the checkpoints are written."""

    store: str = _option("model_store", "out")
    name: str = ""
    model_version: str = "1"
    run_dir: str = ""
    export: bool = True
    recipe: str | None = None  # the recipe file the run started from (training.fitting.recipe)
    recipe_sha256: str | None = None  # ... and the digest of its resolved options, recorded in the manifest


@dataclass(frozen=True)
class FitConfig:
    """Everything that defines a training run; saved (flat) in checkpoints and the manifest."""

    src: tuple[str, ...] = ()
    dst: tuple[str, ...] = ()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    budget: BudgetConfig = BudgetConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    output: OutputConfig = OutputConfig()

    def to_json(self) -> dict[str, Any]:
        """The flat dict of checkpoints and manifests: option name -> value."""
        flat: dict[str, Any] = {"src": self.src, "dst": self.dst}
        for option, (group, attribute) in OPTIONS.items():
            if group is not None:
                flat[option] = getattr(getattr(self, group), attribute)
        return flat

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> FitConfig:
        """Read a flat dict as :meth:`to_json` writes it; unknown keys (older runs) are ignored."""
        known = {k: v for k, v in values.items() if k in OPTIONS}
        for key in ("src", "dst", "lambdas", "histogram_bands"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        return cls().with_options(**known)

    def with_options(self, **options: Any) -> FitConfig:
        """A copy with the given settings, named as on the command line (``lr=0.1``, ``data="dir"``)."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown settings {', '.join(unknown)}")
        changes: dict[str, Any] = {k: options[k] for k in ("src", "dst") if k in options}
        for group in GROUPS:
            updates = {OPTIONS[k][1]: v for k, v in options.items() if OPTIONS[k][0] == group}
            if updates:
                changes[group] = dataclasses.replace(getattr(self, group), **updates)
        return dataclasses.replace(self, **changes)


def _options() -> dict[str, tuple[str | None, str]]:
    """Flat option name -> (group, attribute); ``src`` and ``dst`` belong to no group."""
    options: dict[str, tuple[str | None, str]] = {}
    for item in dataclasses.fields(FitConfig):
        if not dataclasses.is_dataclass(item.default):
            options[item.name] = (None, item.name)
            continue
        for member in dataclasses.fields(item.default):
            options[member.metadata.get("option", member.name)] = (item.name, member.name)
    return options


OPTIONS = _options()
GROUPS = tuple(dict.fromkeys(group for group, _ in OPTIONS.values() if group is not None))


def option_types() -> dict[str, Any]:
    """Flat option name -> its annotated type (``int | None``...): what a recipe's values are checked against."""
    types = {name: hint for name, hint in typing.get_type_hints(FitConfig).items() if name in ("src", "dst")}
    for group in GROUPS:
        hints = typing.get_type_hints(type(getattr(FitConfig(), group)))
        for option, (owner, attribute) in OPTIONS.items():
            if owner == group:
                types[option] = hints[attribute]
    return types


def default_name(arch: str, src: tuple[str, ...], dst: tuple[str, ...]) -> str:
    if arch == "unified":
        return "synnet_unified"
    return f"{arch}_{'-'.join(src)}_to_{'-'.join(dst)}".lower()


def describe(config: FitConfig) -> str:
    """One line for the log: what is trained on what."""
    data = config.data.folder or f"{config.data.phantom_cases} generated phantom cases"
    return (
        f"{config.model.arch} {format_modalities(parse_modalities(config.src))} -> "
        f"{format_modalities(parse_modalities(config.dst))} on {data}, loss {config.model.loss}, "
        f"{config.optim.optimizer} lr {config.optim.lr}, batch {config.optim.batch_size}, "
        f"{config.data.slice_size}px windows"
    )
