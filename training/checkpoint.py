"""Training checkpoints: everything needed to continue a run exactly, or to export it later.

A checkpoint is one ``torch.save`` file holding a plain dict (see :class:`Checkpoint` for the keys).
It is written atomically (temporary file, then ``os.replace``) so that a run killed while
saving never leaves a truncated ``last.pt`` behind, which matters for week-long CPU runs that are
stopped and resumed by hand.

The model weights are those of the bare network (never the DistributedDataParallel wrapper), so a
checkpoint written by ``torchrun`` loads into a single-process run and vice versa.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from torch import nn

from synnet.errors import SynnetError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(SynnetError):
    """A checkpoint file that is missing, unreadable or was written for another configuration."""

    code = "invalid_checkpoint"


class Checkpoint(TypedDict, total=False):
    """The keys of a checkpoint file.

    ``config`` is the run's settings as JSON-friendly values; ``epoch`` counts *completed* epochs
    and ``step`` optimizer steps; ``meta`` carries what the manifest needs (split, output
    reference, architecture and loss descriptions, validation metrics of this epoch).
    """

    format: int
    config: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    scaler: dict[str, Any] | None
    epoch: int
    step: int
    best: dict[str, Any]
    history: list[dict[str, Any]]
    rng: dict[str, Any]
    meta: dict[str, Any]


def rng_state() -> dict[str, Any]:
    """Snapshot of every global random generator a run may touch."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`; CUDA states are restored only when as many devices exist."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write ``checkpoint`` to ``path`` atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"format": FORMAT_VERSION, **checkpoint}, temporary)
    os.replace(temporary, path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint onto the CPU.

    Raises:
        CheckpointError: the file is missing, is not a checkpoint, or has an unknown format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist", code="checkpoint_not_found")
    try:
        # weights_only=False: the file also holds RNG states (numpy arrays, tuples). Only load
        # checkpoints you wrote yourself.
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several unrelated types for a bad file
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {error}") from error
    if not isinstance(data, dict) or "model" not in data or "config" not in data:
        raise CheckpointError(f"{str(path)!r} is not a training checkpoint of this project")
    if data.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{str(path)!r} has checkpoint format {data.get('format')}, expected {FORMAT_VERSION}")
    return data  # type: ignore[return-value]


def warm_start(model: nn.Module, weights: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy every tensor of ``weights`` whose name and shape match into ``model``.

    Used by ``--init`` to start a run from a related one (e.g. T1→T2 from T1,T1c→T2): the arms and
    layers that line up are reused, the rest keep their fresh initialization.

    Returns:
        (loaded names, skipped names of ``model``).
    """
    own = model.state_dict()
    loaded = [name for name, tensor in weights.items() if name in own and own[name].shape == tensor.shape]
    model.load_state_dict({name: weights[name] for name in loaded}, strict=False)
    skipped = sorted(set(own) - set(loaded))
    logger.info("warm start: %d of %d tensors loaded, %d kept fresh", len(loaded), len(own), len(skipped))
    return loaded, skipped


def slim_checkpoint(checkpoint: Checkpoint, half: bool = False) -> Checkpoint:
    """What :func:`training.export.export_checkpoint` needs, without optimizer, schedule or RNG state.

    A slim copy is a third of the size of a full one (Adam keeps two moments per weight), which
    matters when checkpoints travel back from a remote GPU machine. ``half`` stores the floating
    weights as float16 (half again); loading casts them back to float32, so the exported model
    differs by the float16 rounding of each weight (relative 2^-11). A slim checkpoint cannot be
    resumed.
    """

    def shrink(tensor: torch.Tensor) -> torch.Tensor:
        fits = tensor.is_floating_point() and (tensor.numel() == 0 or float(tensor.abs().amax()) < 6e4)
        return tensor.half() if half and fits else tensor

    keep = ("format", "config", "epoch", "step", "best", "history", "meta")
    slim: Checkpoint = {key: checkpoint[key] for key in keep if key in checkpoint}  # type: ignore[literal-required]
    slim["model"] = {name: shrink(tensor) for name, tensor in checkpoint["model"].items()}
    return slim
