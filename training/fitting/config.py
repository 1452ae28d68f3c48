"""Settings of a training run: one dataclass, the argparse groups that fill it, and their checks.

The dataclass is the single source of defaults: the parser leaves every option it was not given
out of the namespace (``argument_default=SUPPRESS``), so the code knows which flags the user
actually wrote. That matters for ``--resume``: a resumed run takes its settings from the
checkpoint, accepts new values only for what may change between sessions (``--epochs``,
``--device``, ...) and refuses a flag that would silently make it a different run.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from synnet.errors import SynnetError
from synnet.modalities import check_disjoint, format_modalities, parse_modalities
from training.losses import list_losses
from training.models import list_models

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MIN_SLICE_SIZE = 16


class ConfigError(SynnetError):
    """A command-line option with an unusable value."""

    code = "invalid_option"


@dataclass
class FitConfig:
    """Everything that defines a training run; saved in checkpoints and the manifest."""

    src: tuple[str, ...] = ()
    dst: tuple[str, ...] = ()
    # data
    data: str | None = None
    phantom_cases: int = 8
    phantom_dir: str = "data/phantom"
    val_cases: str = "1"
    test_cases: str = "0"
    split_seed: int = 0
    min_brain_fraction: float = 0.05
    val_max_slices: int | None = None
    # model and loss
    arch: str = "synnet"
    features: int = 64
    depth: int = 4
    loss: str = "joint"
    lambdas: tuple[float, ...] | None = None
    mask_loss: bool = False
    # optimization
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "constant"
    epochs: int = 20
    batch_size: int = 32
    slice_size: int = 160
    steps_per_epoch: int | None = None
    max_steps: int | None = None
    time_limit: float | None = None
    # augmentation
    augment: bool = True
    max_rotation: float = 10.0
    max_scale: float = 0.1
    # run
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    channels_last: str = "auto"
    workers: int = 0
    init: str | None = None
    # output
    out: str = "model_store"
    name: str = ""
    model_version: str = "1"
    run_dir: str = ""
    export: bool = True

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> FitConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        for key in ("src", "dst", "lambdas"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


# What a resumed run may change; everything else must match the checkpoint.
# ``data``/``phantom_dir`` may move between sessions; the run checks that the split is unchanged.
RESUMABLE = frozenset(
    {
        "data",
        "phantom_dir",
        "epochs",
        "max_steps",
        "time_limit",
        "steps_per_epoch",
        "device",
        "amp",
        "channels_last",
        "workers",
        "out",
        "name",
        "model_version",
        "export",
        "val_max_slices",
        "run_dir",
    }
)
DEFAULTS = FitConfig()


def _default(name: str) -> str:
    value = getattr(DEFAULTS, name)
    return "none" if value in (None, "") else str(value)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m training.fit`` parser; options it was not given stay out of the namespace."""
    parser = argparse.ArgumentParser(
        prog="python -m training.fit",
        argument_default=argparse.SUPPRESS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a network that synthesizes the --dst MR contrasts from the --src ones, then export\n"
        "it as verified, frozen TorchScript plus manifest.json to <out>/<name>/. Checkpoints (last.pt,\n"
        "best.pt by validation loss), the log and the settings go to --run-dir.",
        epilog="examples:\n"
        "  python -m training.fit --src T1 --dst T2 --epochs 2             # generated phantom data\n"
        "  python -m training.fit --src T1,T1c --dst T2,FLAIR --data ../shared/data/brats18 --test-cases 4\n"
        "  python -m training.fit --resume runs/synnet_t1_to_t2/last.pt --epochs 40   # continue a run\n"
        "  torchrun --nproc_per_node=2 -m training.fit --src T1 --dst T2           # DistributedDataParallel\n"
        "\nModalities: T1, T1c, T2, FLAIR (aliases t1ce, t1n, t2w, t2f, flair... case-insensitive).",
    )
    what = parser.add_argument_group("what to synthesize")
    what.add_argument(
        "--src", help="source modalities, comma-separated, in channel order (e.g. T1,T1c); required unless --resume"
    )
    what.add_argument("--dst", help="target modalities, comma-separated, disjoint from --src (e.g. T2)")

    data = parser.add_argument_group("data")
    data.add_argument(
        "--data", metavar="DIR", help="BraTS folder, one sub-folder per case (default: generated phantoms)"
    )
    data.add_argument(
        "--phantom-cases",
        type=int,
        metavar="N",
        help=f"phantom cases to generate without --data (default: {_default('phantom_cases')})",
    )
    data.add_argument(
        "--phantom-dir", metavar="DIR", help=f"cache folder of generated phantoms (default: {_default('phantom_dir')})"
    )
    data.add_argument(
        "--val-cases",
        metavar="N|IDS",
        help=f"validation subjects: a count or comma-separated case ids (default: {_default('val_cases')})",
    )
    data.add_argument(
        "--test-cases",
        metavar="N|IDS",
        help="test subjects held out entirely and recorded in the manifest: a count or case ids "
        f"(default: {_default('test_cases')})",
    )
    data.add_argument(
        "--split-seed",
        type=int,
        metavar="N",
        help=f"seed of the subject split; same seed and cases, same split (default: {_default('split_seed')})",
    )
    data.add_argument(
        "--min-brain-fraction",
        type=float,
        metavar="F",
        help=f"skip axial slices with less brain than this (default: {_default('min_brain_fraction')})",
    )
    data.add_argument(
        "--val-max-slices",
        type=int,
        metavar="N",
        help="validate on at most N evenly spaced slices per case (default: all)",
    )

    model = parser.add_argument_group("model and loss")
    model.add_argument("--arch", choices=list_models(), help=f"network (default: {_default('arch')})")
    model.add_argument(
        "--features", type=int, metavar="N", help=f"feature maps per layer (default: {_default('features')})"
    )
    model.add_argument("--depth", type=int, metavar="N", help=f"pooling levels (default: {_default('depth')})")
    model.add_argument("--loss", choices=list_losses(), help=f"training loss (default: {_default('loss')})")
    model.add_argument(
        "--lambdas", metavar="L1,L2,L3", help="joint loss weights of wL2, wSSIM, TV (default: the paper's 10,5,0.5)"
    )
    model.add_argument("--mask-loss", action="store_true", help="compute the loss inside the brain only")

    optim = parser.add_argument_group("optimization")
    optim.add_argument(
        "--optimizer",
        choices=("sgd", "adam"),
        help=f"sgd: with momentum, as in the paper (default: {_default('optimizer')})",
    )
    optim.add_argument("--lr", type=float, metavar="X", help=f"learning rate (default: {_default('lr')})")
    optim.add_argument("--momentum", type=float, metavar="X", help=f"SGD momentum (default: {_default('momentum')})")
    optim.add_argument(
        "--weight-decay",
        type=float,
        metavar="X",
        help=f"L2 weight penalty, the paper's λ4 (default: {_default('weight_decay')})",
    )
    optim.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        help=f"learning-rate schedule over all steps (default: {_default('schedule')})",
    )
    optim.add_argument(
        "--epochs", type=int, metavar="N", help=f"passes over the training slices (default: {_default('epochs')})"
    )
    optim.add_argument(
        "--batch-size", type=int, metavar="N", help=f"slices per step and process (default: {_default('batch_size')})"
    )
    optim.add_argument(
        "--slice-size",
        type=int,
        metavar="N",
        help=f"side of the random training windows around the brain (default: {_default('slice_size')})",
    )
    optim.add_argument(
        "--steps-per-epoch", type=int, metavar="N", help="cap on optimizer steps per epoch (default: one pass)"
    )
    optim.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps in total")
    optim.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="stop training after this many seconds of optimizer steps (data loading not counted); "
        "with --schedule cosine the decay follows whichever of steps or time is further along",
    )

    augment = parser.add_argument_group("augmentation (identical for sources, targets and mask)")
    augment.add_argument("--no-augment", dest="augment", action="store_false", help="no flips, rotations or scaling")
    augment.add_argument(
        "--max-rotation",
        type=float,
        metavar="DEG",
        help=f"rotations within ±DEG degrees (default: {_default('max_rotation')})",
    )
    augment.add_argument(
        "--max-scale", type=float, metavar="F", help=f"zoom within 1±F (default: {_default('max_scale')})"
    )

    run = parser.add_argument_group("run")
    run.add_argument(
        "--seed", type=int, metavar="N", help=f"seed of weights, windows and augmentation (default: {_default('seed')})"
    )
    run.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), help=f"(default: {_default('device')}: cuda when available)"
    )
    run.add_argument(
        "--amp",
        choices=("auto", "off", "bf16", "fp16"),
        help="mixed precision, CUDA only (default: auto = bf16 where supported, else fp16)",
    )
    run.add_argument(
        "--channels-last",
        choices=("auto", "on", "off"),
        help="channels_last memory format (default: auto = on CUDA only; it is slower on CPU)",
    )
    run.add_argument(
        "--workers", type=int, metavar="N", help=f"DataLoader worker processes (default: {_default('workers')})"
    )
    run.add_argument(
        "--resume",
        metavar="CKPT",
        help="continue a run exactly from its checkpoint (runs/<name>/last.pt), with its settings; "
        "only --epochs, --max-steps, --device and other session options may change",
    )
    run.add_argument(
        "--init", metavar="CKPT", help="warm start: initialize the weights that fit from another run's checkpoint"
    )

    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help=f"model store (default: {_default('out')})")
    out.add_argument("--name", help="model name (default: <arch>_<src>_to_<dst>, e.g. synnet_t1-t1c_to_t2)")
    out.add_argument(
        "--model-version", metavar="V", help=f"version recorded in the manifest (default: {_default('model_version')})"
    )
    out.add_argument("--run-dir", metavar="DIR", help="checkpoints, log and history (default: runs/<name>)")
    out.add_argument(
        "--no-export", dest="export", action="store_false", help="train only; export later with training.export"
    )
    return parser


def _parse_lambdas(text: str | tuple[float, ...]) -> tuple[float, ...]:
    if isinstance(text, tuple):
        return text
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--lambdas must be three numbers like 10,5,0.5, got {text!r}") from None
    if len(values) != 3 or any(v < 0 for v in values):
        raise ConfigError(f"--lambdas must be three non-negative numbers (wL2, wSSIM, TV), got {text!r}")
    return values


def default_name(arch: str, src: tuple[str, ...], dst: tuple[str, ...]) -> str:
    return f"{arch}_{'-'.join(src)}_to_{'-'.join(dst)}".lower()


def make_config(given: dict[str, Any], base: FitConfig | None = None) -> FitConfig:
    """Apply the explicitly given options to ``base`` (the defaults, or a resumed run's settings).

    Raises:
        ConfigError / UnknownModalityError / SynnetError: a value that cannot work, naming it.
    """
    given = {k: v for k, v in given.items() if k != "resume"}
    if base is None:
        return _checked(dataclasses.replace(DEFAULTS, **given))
    requested = _checked(dataclasses.replace(base, **given))
    changed = sorted(k for k in given if k not in RESUMABLE and getattr(requested, k) != getattr(base, k))
    if changed:
        flags = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise ConfigError(
            f"{flags} differ from the resumed run's settings; a resumed run keeps them "
            "(start a new run with --init CKPT to change them)"
        )
    return _checked(dataclasses.replace(base, **{k: v for k, v in given.items() if k in RESUMABLE}))


def _checked(config: FitConfig) -> FitConfig:
    if not config.src or not config.dst:
        raise ConfigError("--src and --dst are required (e.g. --src T1,T1c --dst T2)")
    src, dst = parse_modalities(config.src), parse_modalities(config.dst)
    check_disjoint(src, dst)
    changes: dict[str, Any] = {
        "src": tuple(m.value for m in src),
        "dst": tuple(m.value for m in dst),
        "lambdas": _parse_lambdas(config.lambdas) if config.lambdas is not None else None,
    }
    if changes["lambdas"] is not None and config.loss != "joint":
        raise ConfigError(f"--lambdas applies to --loss joint only, not {config.loss}")
    positive = {
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "features": config.features,
        "depth": config.depth,
        "phantom_cases": config.phantom_cases,
        "steps_per_epoch": config.steps_per_epoch,
        "max_steps": config.max_steps,
        "val_max_slices": config.val_max_slices,
    }
    for key, value in positive.items():
        if value is not None and value < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
    if config.time_limit is not None and config.time_limit <= 0:
        raise ConfigError(f"--time-limit must be positive, got {config.time_limit}")
    if config.slice_size < MIN_SLICE_SIZE:
        raise ConfigError(f"--slice-size must be at least {MIN_SLICE_SIZE}, got {config.slice_size}")
    if config.lr <= 0 or config.weight_decay < 0 or not 0 <= config.momentum < 1:
        raise ConfigError(
            f"need --lr > 0, --weight-decay >= 0 and 0 <= --momentum < 1; got lr={config.lr}, "
            f"weight_decay={config.weight_decay}, momentum={config.momentum}"
        )
    if not 0 <= config.max_rotation <= 45 or not 0 <= config.max_scale < 0.5:
        raise ConfigError(
            f"need 0 <= --max-rotation <= 45 and 0 <= --max-scale < 0.5, got {config.max_rotation}, {config.max_scale}"
        )
    if not 0 <= config.min_brain_fraction <= 1:
        raise ConfigError(f"--min-brain-fraction must be in [0, 1], got {config.min_brain_fraction}")
    if config.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {config.workers}")
    name = config.name or default_name(config.arch, changes["src"], changes["dst"])
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"--name {name!r} must be letters, digits, '_', '-' or '.', starting with a letter or digit")
    changes["name"] = name
    changes["run_dir"] = config.run_dir or f"runs/{name}"
    return dataclasses.replace(config, **changes)


def describe(config: FitConfig) -> str:
    """One line for the log: what is trained on what."""
    data = config.data or f"{config.phantom_cases} generated phantom cases"
    return (
        f"{config.arch} {format_modalities(parse_modalities(config.src))} -> "
        f"{format_modalities(parse_modalities(config.dst))} on {data}, loss {config.loss}, "
        f"{config.optimizer} lr {config.lr}, batch {config.batch_size}, {config.slice_size}px windows"
    )
