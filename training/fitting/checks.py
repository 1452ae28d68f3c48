"""Whether a run's settings can work, checked before anything is read or trained: one place for every rule.

The command line (:mod:`training.fitting.cli`) and recipes (:mod:`training.fitting.recipe`) both end in
:func:`checked`, so a value refused on the command line is refused in a recipe too, with the same message.
"""

from __future__ import annotations

import re

from synnet.modalities import Modality, check_disjoint, parse_modalities
from synnet.neighbours import MAX_CONTEXT_SLICES
from training.fitting.config import ConfigError, FitConfig, default_name
from training.losses import list_losses
from training.models import is_any_to_any, list_models
from training.models.unified import FUSIONS

# The values an option may take, for the command line and for recipes alike.
CHOICES: dict[str, tuple[str, ...]] = {
    "target_anchor": ("percentile", "median"),
    "arch": tuple(list_models()),
    "fusion": tuple(FUSIONS),
    "loss": tuple(list_losses()),
    "optimizer": ("sgd", "adam"),
    "schedule": ("constant", "cosine"),
    "device": ("auto", "cpu", "cuda"),
    "amp": ("auto", "off", "bf16", "fp16"),
    "channels_last": ("auto", "on", "off"),
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MIN_SLICE_SIZE = 16


def _parse_numbers(text: str | tuple[float, ...], flag: str, example: str) -> tuple[float, ...]:
    """A comma-separated option as floats (a resumed run's value is a tuple already)."""
    if isinstance(text, tuple):
        return text
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{flag} must be numbers like {example}, got {text!r}") from None


def _parse_bands(text: str | tuple[float, ...]) -> tuple[float, ...]:
    values = _parse_numbers(text, "--histogram-bands", "0,1,50,99,100")
    if len(values) < 2 or any(not 0 <= v <= 100 for v in values) or list(values) != sorted(set(values)):
        raise ConfigError(f"--histogram-bands must be at least two increasing percentiles in 0..100, got {text!r}")
    return values


def _parse_lambdas(text: str | tuple[float, ...]) -> tuple[float, ...]:
    values = _parse_numbers(text, "--lambdas", "10,5,0.5")
    if len(values) != 3 or any(v < 0 for v in values):
        raise ConfigError(f"--lambdas must be three non-negative numbers (wL2, wSSIM, TV), got {text!r}")
    return values


def _any_to_any_modalities(config: FitConfig) -> FitConfig:
    """The unified model takes and makes all four modalities; --src/--dst, if given, must say so."""
    every = tuple(m.value for m in Modality)
    for flag, given in (("--src", config.src), ("--dst", config.dst)):
        if given and {m.value for m in parse_modalities(given)} != set(every):
            raise ConfigError(
                f"--arch {config.model.arch} takes and makes all of {','.join(every)} (sources are drawn per "
                f"step); leave out {flag} or give all four, got {flag} {','.join(given)}"
            )
    return config.with_options(src=every, dst=every)


def checked(config: FitConfig) -> FitConfig:
    """``config`` with canonical modality names, parsed ``--lambdas``, name and run folder; or ConfigError."""
    data, model, optim, budget = config.data, config.model, config.optim, config.budget
    flat = config.to_json()
    for key, allowed in CHOICES.items():
        if flat[key] is not None and flat[key] not in allowed:
            raise ConfigError(f"--{key.replace('_', '-')} must be one of {', '.join(allowed)}, got {flat[key]!r}")
    if is_any_to_any(model.arch):
        config = _any_to_any_modalities(config)
    elif model.fusion is not None:
        raise ConfigError("--fusion needs --arch unified (the other models concatenate their arms)")
    if not config.src or not config.dst:
        raise ConfigError("--src and --dst are required (e.g. --src T1,T1c --dst T2)")
    src, dst = parse_modalities(config.src), parse_modalities(config.dst)
    if not is_any_to_any(model.arch):
        check_disjoint(src, dst)
    lambdas = _parse_lambdas(model.lambdas) if model.lambdas is not None else None
    if lambdas is not None and not model.loss.startswith("joint"):
        raise ConfigError(f"--lambdas applies to the joint losses only, not {model.loss}")
    positive = {
        "epochs": budget.epochs,
        "batch_size": optim.batch_size,
        "features": model.features,
        "depth": model.depth,
        "phantom_cases": data.phantom_cases,
        "steps_per_epoch": budget.steps_per_epoch,
        "max_steps": budget.max_steps,
        "val_max_slices": data.val_max_slices,
        "prepare_workers": data.prepare_workers,
    }
    for key, value in positive.items():
        if value is not None and value < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
    if model.tumour_weight <= 0:
        raise ConfigError(f"--tumour-weight must be positive, got {model.tumour_weight}")
    if model.weighs_tumour and not model.mask_loss:
        raise ConfigError("--tumour-weight needs --mask-loss (it weighs the loss inside the brain)")
    if model.histogram_weight < 0:
        raise ConfigError(f"--histogram-weight must be non-negative, got {model.histogram_weight}")
    if model.histogram_weight and not model.loss.startswith("joint"):
        raise ConfigError(f"--histogram-weight applies to the joint losses only, not {model.loss}")
    bands = None
    if model.histogram_bands is not None:
        if not model.histogram_weight:
            raise ConfigError("--histogram-bands needs --histogram-weight")
        bands = _parse_bands(model.histogram_bands)
    if budget.time_limit is not None and budget.time_limit <= 0:
        raise ConfigError(f"--time-limit must be positive, got {budget.time_limit}")
    if data.slice_size < MIN_SLICE_SIZE:
        raise ConfigError(f"--slice-size must be at least {MIN_SLICE_SIZE}, got {data.slice_size}")
    if optim.lr <= 0 or optim.weight_decay < 0 or not 0 <= optim.momentum < 1:
        raise ConfigError(
            f"need --lr > 0, --weight-decay >= 0 and 0 <= --momentum < 1; got lr={optim.lr}, "
            f"weight_decay={optim.weight_decay}, momentum={optim.momentum}"
        )
    if not 0 <= data.max_rotation <= 45 or not 0 <= data.max_scale < 0.5:
        raise ConfigError(
            f"need 0 <= --max-rotation <= 45 and 0 <= --max-scale < 0.5, got {data.max_rotation}, {data.max_scale}"
        )
    if not 0 <= data.context_slices <= MAX_CONTEXT_SLICES:
        raise ConfigError(f"--context-slices must be from 0 to {MAX_CONTEXT_SLICES}, got {data.context_slices}")
    if data.context_slices and is_any_to_any(model.arch):
        raise ConfigError("--context-slices is not available with --arch unified (its arms take one slice each)")
    if data.target_anchor != "percentile" and is_any_to_any(model.arch):
        raise ConfigError("--target-anchor is not available with --arch unified (its targets are also its sources)")
    if not 0 <= data.min_brain_fraction <= 1:
        raise ConfigError(f"--min-brain-fraction must be in [0, 1], got {data.min_brain_fraction}")
    if data.cache_memory < 0:
        raise ConfigError(f"--cache-memory must be >= 0 MB, got {data.cache_memory}")
    if config.runtime.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {config.runtime.workers}")
    canonical = (tuple(m.value for m in src), tuple(m.value for m in dst))
    name = config.output.name or default_name(model.arch, *canonical)
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"--name {name!r} must be letters, digits, '_', '-' or '.', starting with a letter or digit")
    return config.with_options(
        src=canonical[0],
        dst=canonical[1],
        lambdas=lambdas,
        histogram_bands=bands,
        name=name,
        run_dir=config.output.run_dir or f"runs/{name}",
    )
