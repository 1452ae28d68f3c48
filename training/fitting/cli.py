"""The ``python -m training.fit`` command line: argparse groups, their checks, and the resume rules.

:class:`~training.fitting.config.FitConfig` is the single source of defaults: the parser leaves
every option it was not given out of the namespace (``argument_default=SUPPRESS``), so the code
knows which flags the user actually wrote. That matters for ``--resume``: a resumed run takes its
settings from the checkpoint, accepts new values only for what may change between sessions
(``--epochs``, ``--device``, ...) and refuses a flag that would silently make it a different run.
"""

from __future__ import annotations

import argparse
from typing import Any

from synnet.normalization import MEDIAN_LEVEL
from synnet.settings.training import DEFAULT_TRAINING_CACHE
from training.fitting.checks import CHOICES, checked
from training.fitting.config import ConfigError, FitConfig
from training.fitting.recipe import load_recipe, parse_set

# What a resumed run may change (option names); everything else must match the checkpoint.
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
        "cache_dir",
        "cache_memory",
        "prepare_workers",
        "strict_data",
    }
)
DEFAULTS = FitConfig().to_json()


def _default(name: str) -> str:
    value = DEFAULTS[name]
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
        "--src",
        help="source modalities, comma-separated, in channel order (e.g. T1,T1c); required unless --resume "
        "or --arch unified (which always takes T1,T1c,T2,FLAIR and draws random source subsets per step)",
    )
    what.add_argument("--dst", help="target modalities, comma-separated, disjoint from --src (e.g. T2)")

    recipe = parser.add_argument_group("recipe (training.fitting.recipe)")
    recipe.add_argument(
        "--recipe",
        metavar="FILE",
        help="start from the options of a recipe file (TOML, e.g. recipes/bundled/synnet_t1_to_t2.toml); "
        "--set and the other flags override it; the manifest records the file and its digest",
    )
    recipe.add_argument(
        "--set",
        dest="assignments",
        action="append",
        metavar="KEY=VALUE",
        help='override one option by its name, e.g. --set lr=0.01 --set src=\'["T1", "T2"]\' (repeatable)',
    )

    data = parser.add_argument_group("data")
    data.add_argument(
        "--data", metavar="DIR", help="BraTS folder, one sub-folder per case (default: generated phantoms)"
    )
    data.add_argument(
        "--extra-data",
        metavar="DIR",
        help="BraTS folders (comma-separated) of more training cases that may lack modalities (e.g. "
        "../shared/data/brats18_t1_flair); none is held out. --arch unified trains on all of them, "
        "another model on those that hold its --src and --dst",
    )
    data.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the training cache: each case is decoded once into memory-mapped arrays there and streamed from "
        "them, redone only when its files or the preparation settings change (python -m training.prepare "
        f"prepares it ahead; default: $SYNNET_TRAINING_CACHE, else {DEFAULT_TRAINING_CACHE})",
    )
    data.add_argument(
        "--cache-memory",
        type=int,
        metavar="MB",
        help="keep up to MB of recently read slices in each process (for a cache on slow or network storage; "
        f"default: {_default('cache_memory')}, the kernel's page cache alone)",
    )
    data.add_argument(
        "--prepare-workers", type=int, metavar="N", help="processes preparing the cache (default: every core)"
    )
    data.add_argument(
        "--strict-data",
        action="store_true",
        help="stop on a case that cannot be read (corrupt, truncated, images on different grids) instead of "
        "skipping it with a warning",
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
        help="validate on a seeded choice of at most N slices over all validation cases, the same every epoch, "
        f"read one case at a time (default: {_default('val_max_slices')})",
    )

    data.add_argument(
        "--slice-size",
        type=int,
        metavar="N",
        help=f"side of the random training windows around the brain (default: {_default('slice_size')})",
    )
    data.add_argument(
        "--context-slices",
        type=int,
        metavar="K",
        help="2.5D input: feed every source slice with its K axial neighbours on each side as extra channels "
        f"(synnet.neighbours; not with --arch unified) (default: {_default('context_slices')})",
    )
    data.add_argument(
        "--target-anchor",
        choices=CHOICES["target_anchor"],
        help="scale each target like the sources (its 0.5/99.5 percentiles in the brain), or with the brain's "
        f"median at {MEDIAN_LEVEL} (not with --arch unified) (default: {_default('target_anchor')})",
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
    augment.add_argument(
        "--intensity-augment",
        action="store_true",
        help="also re-render the sources (percentile jitter, gamma, bias field, noise, blur) as other sites "
        "and pipelines would; targets unchanged (training.data.intensity)",
    )

    model = parser.add_argument_group("model and loss")
    model.add_argument("--arch", choices=CHOICES["arch"], help=f"network (default: {_default('arch')})")
    model.add_argument(
        "--features", type=int, metavar="N", help=f"feature maps per layer (default: {_default('features')})"
    )
    model.add_argument("--depth", type=int, metavar="N", help=f"pooling levels (default: {_default('depth')})")
    model.add_argument(
        "--fusion",
        choices=CHOICES["fusion"],
        help="--arch unified: combine the present arms' features by their mean, or by mean and maximum (default: mean)",
    )
    model.add_argument("--loss", choices=CHOICES["loss"], help=f"training loss (default: {_default('loss')})")
    model.add_argument(
        "--lambdas", metavar="L1,L2,L3", help="joint loss weights of wL2, wSSIM, TV (default: the paper's 10,5,0.5)"
    )
    model.add_argument("--mask-loss", action="store_true", help="compute the loss inside the brain only")
    model.add_argument(
        "--tumour-weight",
        type=float,
        metavar="W",
        help="with --mask-loss: weigh the loss W times inside the tumour (the training cases' seg > 0) "
        f"as in the rest of the brain (default: {_default('tumour_weight')})",
    )
    model.add_argument(
        "--histogram-weight",
        type=float,
        metavar="X",
        help="joint losses: add X times the distance between the prediction's and the target's intensity "
        "distributions (inside the brain with --mask-loss), so the output keeps the target's bright tail "
        f"(default: {_default('histogram_weight')}, no such term)",
    )
    model.add_argument(
        "--histogram-bands",
        metavar="P1,P2,...",
        help="with --histogram-weight: compare the distributions band by band between these percentiles, "
        "each band weighing alike, e.g. 0,1,10,50,90,99,100 (default: rank by rank)",
    )
    model.add_argument(
        "--init", metavar="CKPT", help="warm start: initialize the weights that fit from another run's checkpoint"
    )

    optim = parser.add_argument_group("optimization")
    optim.add_argument(
        "--optimizer",
        choices=CHOICES["optimizer"],
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
        choices=CHOICES["schedule"],
        help=f"learning-rate schedule over all steps (default: {_default('schedule')})",
    )
    optim.add_argument(
        "--batch-size", type=int, metavar="N", help=f"slices per step and process (default: {_default('batch_size')})"
    )

    budget = parser.add_argument_group("budget (training stops at whichever limit comes first)")
    budget.add_argument(
        "--epochs", type=int, metavar="N", help=f"passes over the training slices (default: {_default('epochs')})"
    )
    budget.add_argument(
        "--steps-per-epoch", type=int, metavar="N", help="cap on optimizer steps per epoch (default: one pass)"
    )
    budget.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps in total")
    budget.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="stop training after this many seconds of optimizer steps (data loading not counted); "
        "with --schedule cosine the decay follows whichever of steps or time is further along",
    )

    run = parser.add_argument_group("run")
    run.add_argument(
        "--seed", type=int, metavar="N", help=f"seed of weights, windows and augmentation (default: {_default('seed')})"
    )
    run.add_argument(
        "--device", choices=CHOICES["device"], help=f"(default: {_default('device')}: cuda when available)"
    )
    run.add_argument(
        "--amp",
        choices=CHOICES["amp"],
        help="mixed precision, CUDA only (default: auto = bf16 where supported, else fp16)",
    )
    run.add_argument(
        "--channels-last",
        choices=CHOICES["channels_last"],
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


def with_recipe(given: dict[str, Any]) -> dict[str, Any]:
    """The parsed flags on top of ``--recipe``'s options and ``--set``'s: flags win, then --set, then the recipe."""
    given = dict(given)
    path, assignments = given.pop("recipe", None), given.pop("assignments", None) or []
    if path is not None and "resume" in given:
        raise ConfigError("--recipe starts a run; a resumed run keeps its checkpoint's settings")
    options: dict[str, Any] = {}
    if path is not None:
        recipe_options, digest = load_recipe(path)
        options = {**recipe_options, "recipe": str(path), "recipe_sha256": digest}
    return {**options, **parse_set(assignments), **given}


def make_config(given: dict[str, Any], base: FitConfig | None = None) -> FitConfig:
    """Apply the explicitly given options (flat names, as parsed) to ``base`` (the defaults, or a resumed run's).

    Raises:
        ConfigError / UnknownModalityError / SynnetError: a value that cannot work, naming it.
    """
    given = {k: v for k, v in given.items() if k != "resume"}
    if base is None:
        return checked(FitConfig().with_options(**given))
    requested, saved = checked(base.with_options(**given)).to_json(), base.to_json()
    changed = sorted(k for k in given if k not in RESUMABLE and requested[k] != saved[k])
    if changed:
        flags = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise ConfigError(
            f"{flags} differ from the resumed run's settings; a resumed run keeps them "
            "(start a new run with --init CKPT to change them)"
        )
    return checked(base.with_options(**{k: v for k, v in given.items() if k in RESUMABLE}))
