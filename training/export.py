"""Export a trained network as frozen TorchScript, its ``torch.export`` program and its manifest, verified.

The service loads only what this module writes: ``<store>/<name>/model.pt`` (TorchScript, the
default), ``<store>/<name>/model.pt2`` (the same network as an exported program,
:mod:`training.program`) and ``<store>/<name>/manifest.json``, whose digest covers both files.
Export therefore checks itself (script → freeze → save → reload → compare with eager; export →
save → load → compare with model.pt) and refuses to write a model whose reloaded outputs drift by
more than 1e-5, instead of letting the service discover it.

CLI, to re-export a training checkpoint (e.g. the best one of an interrupted run), or to give the
models of a store that have none their exported program::

    python -m training.export runs/synnet_t1_to_t2/best.pt --out model_store --name synnet_t1_to_t2
    python -m training.export --programs --out model_store
"""

from __future__ import annotations

import argparse
import copy
import logging
import platform
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import synnet
from synnet.errors import SynnetError
from synnet.manifest import MANIFEST_FILE, MODEL_FILE, PROGRAM_FILE, ModelManifest
from synnet.neighbours import slices_per_source
from synnet.store import model_folders, read_manifest, staged_folder
from training.checkpoint import Checkpoint, load_checkpoint
from training.models import create_model
from training.program import write_program

logger = logging.getLogger(__name__)

VERIFY_ATOL = 1e-5


class ExportError(SynnetError):
    """The exported model does not reproduce the eager model, or cannot be scripted."""

    code = "export_failed"


Example = torch.Tensor | tuple[torch.Tensor, ...]


def export_torchscript(
    model: nn.Module, example: Example, path: str | Path, verify: bool = True, atol: float = VERIFY_ATOL
) -> torch.jit.ScriptModule:
    """Script, freeze and save ``model``; reload the file and compare it with eager.

    Args:
        model: the network; it is put in eval mode (BatchNorm uses its running statistics).
        example: an input (B, channels, H, W) on the model's device used for the comparison, or the
            any-to-any model's ``(x (B, 4, H, W), present (B, 4))``.
        path: where to write the TorchScript file.
        verify: reload the saved file and compare its output on ``example`` with eager's.
        atol: largest absolute difference allowed.

    Returns:
        The reloaded (or, without ``verify``, the frozen) module.

    Raises:
        ExportError: scripting fails, or the reloaded output differs in shape or by more than ``atol``.
    """
    model.eval()
    path = Path(path)
    try:
        # optimize_numerics=False: folding BatchNorm into the convs shifts values by ~1e-6, enough to flip
        # near-ties of the 2×2 max-pools, whose unpooling then moves whole activations (seen: 0.013)
        frozen = torch.jit.freeze(torch.jit.script(model), optimize_numerics=False)
    except Exception as error:  # TorchScript reports unsupported code with several types
        raise ExportError(f"cannot script {type(model).__name__}: {error}") from error
    torch.jit.save(frozen, str(path))
    if not verify:
        return frozen
    inputs = example if isinstance(example, tuple) else (example,)
    reloaded = torch.jit.load(str(path), map_location=inputs[0].device)
    with torch.no_grad():
        expected = model(*inputs)
        actual = reloaded(*inputs)
    if actual.shape != expected.shape:
        raise ExportError(f"exported model returns shape {tuple(actual.shape)}, eager {tuple(expected.shape)}")
    difference = float((actual - expected).abs().max())
    if not difference <= atol:  # also catches NaN
        raise ExportError(f"exported model differs from eager by {difference:.3g} (allowed {atol:g})")
    logger.debug("exported %s: reloaded output matches eager (max |diff| %.2g)", path, difference)
    return reloaded


def framework_versions() -> dict[str, str]:
    """Versions that determine whether a model file loads and computes the same elsewhere."""
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "synnet": synnet.__version__,
    }
    if torch.version.cuda:
        versions["cuda"] = torch.version.cuda
    return versions


def write_model(
    store_dir: str | Path, name: str, model: nn.Module, example: Example, **manifest_fields: Any
) -> ModelManifest:
    """Write ``<store_dir>/<name>/{model.pt, model.pt2, manifest.json}``, replacing an older model of that name.

    The files are written to a temporary folder next to the destination and moved into place only
    after both exports verified themselves and the manifest validated, so the service never sees a
    half-written model.

    Args:
        store_dir: the model store (``model_store``).
        name: the model's folder name and manifest name.
        model: the network; exported from the CPU.
        example: an input (B, channels, H, W) for the export's self-check.
        manifest_fields: the remaining :class:`ModelManifest` fields (src, dst, architecture,
            loss, normalization, output_reference, input, training_data, training, validation...).

    Returns:
        The manifest as written.
    """
    with staged_folder(store_dir, name) as staging:
        cpu_model = copy.deepcopy(model).to("cpu").float()  # leave the caller's model where it is
        inputs = tuple(t.to("cpu").float() for t in (example if isinstance(example, tuple) else (example,)))
        export_torchscript(cpu_model, inputs, staging / MODEL_FILE)
        manifest = ModelManifest(
            name=name, frameworks=framework_versions(), sha256="", created=datetime.now(UTC), **manifest_fields
        )
        program = write_program(staging, manifest, cpu_model, inputs, VERIFY_ATOL)
        manifest = manifest.model_copy(update={"exported_program": program}).sealed(staging / MODEL_FILE)
        manifest.save(staging)
    target = Path(store_dir) / name
    logger.info("wrote %s", target)
    return manifest


def model_from_checkpoint(checkpoint: Checkpoint) -> nn.Module:
    """Rebuild the bare network of a checkpoint and load its weights."""
    spec = checkpoint["meta"]["manifest"]["architecture"]
    params = dict(spec["params"])
    n_src, n_dst = params.pop("n_src"), params.pop("n_dst")
    model = create_model(spec["name"], n_src, n_dst, **params)
    model.load_state_dict(checkpoint["model"])
    return model


def example_input(channels: int, size: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A reproducible model-space input (B, channels, size, size) in [0, 1] for the export check."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, size, size, generator=generator)


def any_to_any_example(size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x (4, 4, size, size), present (4, 4))``: one source, two, three, and another single one,
    so the check runs every encoder and decoder arm; absent channels are zero, as inference feeds them."""
    present = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1]], dtype=torch.float32)
    x = example_input(4, size, batch=4, seed=seed) * present[:, :, None, None]
    return x, present


def verification_example(any_to_any: bool, channels: int, trained_slice_size: int | None) -> Example:
    """The input an export checks itself on: the model's training window size (64 if unknown, at most 256)."""
    size = min(int(trained_slice_size or 64), 256)
    return any_to_any_example(size) if any_to_any else example_input(channels, size)


def export_checkpoint(checkpoint: Checkpoint, store_dir: str | Path, name: str | None = None) -> ModelManifest:
    """Export a training checkpoint to the model store, with the manifest recorded in it.

    Args:
        checkpoint: as loaded by :func:`training.checkpoint.load_checkpoint`.
        store_dir: the model store.
        name: the model name; defaults to the run's ``--name``.
    """
    fields = dict(checkpoint["meta"]["manifest"])
    name = name or checkpoint["config"]["name"]
    model = model_from_checkpoint(checkpoint)
    channels = len(fields["src"]) * slices_per_source(fields["input"].get("context_slices", 0))
    example = verification_example(bool(fields.get("any_to_any")), channels, fields["input"].get("trained_slice_size"))
    return write_model(store_dir, name, model, example, **fields)


def add_program(store_dir: str | Path, name: str) -> ModelManifest:
    """Give ``<store_dir>/<name>``, exported before programs were, its verified ``model.pt2``.

    model.pt and every other file stay as they are; the manifest names the program and its digest
    is resealed over both files. The folder is replaced as :func:`write_model` replaces one.

    Raises:
        StoreError: the folder's manifest does not match its model file (nothing is resealed over that).
    """
    folder = Path(store_dir) / name
    manifest = read_manifest(folder)
    example = verification_example(manifest.any_to_any, manifest.input_channels, manifest.input.trained_slice_size)
    inputs = example if isinstance(example, tuple) else (example,)
    with staged_folder(store_dir, name) as staging:
        for path in folder.iterdir():
            if path.is_file() and path.name not in (MANIFEST_FILE, PROGRAM_FILE):
                shutil.copy2(path, staging / path.name)
        program = write_program(staging, manifest, None, inputs, VERIFY_ATOL)
        manifest = manifest.model_copy(update={"exported_program": program}).sealed(staging / manifest.model_file)
        manifest.save(staging)
    logger.info("%s: wrote %s, sha256 now %s", name, program, manifest.sha256[:12])
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m training.export [CHECKPOINT] [--out DIR] [--name NAME] [--programs] [--triton DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.export",
        description="Export a training checkpoint (runs/<name>/best.pt or last.pt) as verified "
        "frozen TorchScript, its torch.export program (model.pt2) and manifest.json into the model store.",
    )
    parser.add_argument(
        "checkpoint", type=Path, nargs="?", help="a checkpoint of python -m training.fit (optional with --triton)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("model_store"), help="model store folder (default: %(default)s)"
    )
    parser.add_argument("--name", help="model name (default: the run's --name)")
    parser.add_argument(
        "--triton",
        type=Path,
        metavar="DIR",
        help="also write a Triton model repository (config.pbtxt + 1/model.pt) for the exported model, or, "
        "without CHECKPOINT, for every model in --out (finer control: python -m training.triton)",
    )
    parser.add_argument(
        "--programs",
        action="store_true",
        help="give every model of --out that has no model.pt2 its verified exported program (model.pt unchanged)",
    )
    args = parser.parse_args(argv)
    if args.checkpoint is None and args.triton is None and not args.programs:
        parser.error("give a CHECKPOINT to export, --programs, --triton DIR, or a combination")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from training.triton import write_triton_repository  # imported late: only --triton needs it

    try:
        names = None
        if args.checkpoint is not None:
            manifest = export_checkpoint(load_checkpoint(args.checkpoint), args.out, args.name)
            where = args.out / manifest.name
            logger.info("model %s (sha256 %s) written to %s", manifest.name, manifest.sha256[:12], where)
            names = [manifest.name]
        if args.programs:
            for folder in model_folders(args.out):
                if ModelManifest.load(folder).exported_program is None:
                    add_program(args.out, folder.name)
        if args.triton is not None:
            written = write_triton_repository(args.out, args.triton, names)
            logger.info("Triton repository %s: %s", args.triton, ", ".join(p.name for p in written))
    except (SynnetError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
