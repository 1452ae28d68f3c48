"""Turn a synnet model store into a Triton Inference Server model repository.

For every ``<store>/<name>/{model.pt, manifest.json}`` this writes::

    <out>/<name>/config.pbtxt      platform "pytorch_libtorch", INPUT__0 / OUTPUT__0, dynamic batching
    <out>/<name>/manifest.json     the synnet manifest, for clients (channel order, normalization)
    <out>/<name>/<version>/model.pt

The TorchScript file is the one the synnet service serves, unchanged: input (B, len(src), H, W)
float32 in model space (len(src)·(2K+1) channels for a 2.5D model: each source's slices z−K … z+K,
K = ``input.context_slices``), output (B, len(dst), H, W). Triton batches the first axis itself, so the
config's dims leave it out and keep H and W variable. A Triton client must do what the synnet
service does around the network (normalize the sources with the manifest's percentiles, clip,
map back with ``output_reference``); docs/deployment.md shows how.

Only the TorchScript file goes in, not the store's ``model.pt2``: released Triton's PyTorch backend
loads TorchScript (``pytorch_libtorch``) or a Python ``model.py``, never a ``torch.export.save``
archive, and a repository holding one would load in no Triton release (docs/deployment.md, "TorchScript,
torch.export and Triton").

An any-to-any model (``manifest.any_to_any``, the unified SynNet) has a second input,
``INPUT__1`` = ``present`` (B, 4) float32, 1 where the sample's modality is given; its
``model.pt`` is a verified wrapper that makes ``present`` a required argument, because Triton
loads no model with an optional one (:mod:`training.triton_any_to_any`).

CLI::

    python -m training.triton --store model_store --out triton_models
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synnet.errors import SynnetError
from synnet.manifest import MANIFEST_FILE, MODEL_FILE, ModelManifest
from synnet.modalities import format_modalities
from synnet.store import StoreError, read_manifest, staged_folder
from training.triton_any_to_any import TritonSignatureError, write_required_present

logger = logging.getLogger(__name__)

PLATFORM = "pytorch_libtorch"
# The PyTorch backend binds tensors by position; <name>__<index> is its naming convention for that.
INPUT_NAME = "INPUT__0"
PRESENT_NAME = "INPUT__1"  # an any-to-any model's second argument, present (B, len(src))
OUTPUT_NAME = "OUTPUT__0"
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_PREFERRED_BATCH_SIZES = (8, 16, 32)
# Long enough to gather the slices of concurrent requests, short next to one forward pass.
DEFAULT_QUEUE_DELAY_US = 2000


class TritonExportError(SynnetError):
    code = "triton_export_failed"


def triton_version(manifest: ModelManifest) -> int:
    """Triton's version folder for a manifest: its ``version`` when that is a positive integer, else 1."""
    version = manifest.version.strip()
    return int(version) if version.isdigit() and int(version) > 0 else 1


def config_pbtxt(
    manifest: ModelManifest,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    preferred_batch_sizes: Sequence[int] = DEFAULT_PREFERRED_BATCH_SIZES,
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
) -> str:
    """The ``config.pbtxt`` (protobuf text format of Triton's ``ModelConfig``) of one model.

    Args:
        manifest: the model's manifest; ``src`` and ``dst`` give the channel counts, ``any_to_any``
            adds the input ``present``.
        max_batch_size: the most slices Triton runs in one forward pass.
        preferred_batch_sizes: batch sizes the dynamic batcher aims for; those above
            ``max_batch_size`` are dropped.
        queue_delay_us: how long the batcher may hold a request to fill a batch.

    Raises:
        TritonExportError: ``max_batch_size`` < 1 or a negative delay.
    """
    if max_batch_size < 1 or queue_delay_us < 0:
        raise TritonExportError(
            f"max_batch_size must be >= 1 and queue_delay_us >= 0, got {max_batch_size} and {queue_delay_us}"
        )
    preferred = sorted({size for size in preferred_batch_sizes if 1 <= size <= max_batch_size})
    # Parameters travel with the config, so a client can read the channel order from Triton itself.
    parameters = {
        "synnet_src": format_modalities(manifest.src),
        "synnet_dst": format_modalities(manifest.dst),
        "synnet_context_slices": str(manifest.input.context_slices),
        "synnet_sha256": manifest.sha256,
    }
    channels = manifest.input_channels
    present = [(PRESENT_NAME, [len(manifest.src)])] if manifest.any_to_any else []
    lines = [
        f'name: "{manifest.name}"',
        f'platform: "{PLATFORM}"',
        f"max_batch_size: {max_batch_size}",
        _tensor_block("input", [(INPUT_NAME, [channels, -1, -1]), *present]),
        _tensor_block("output", [(OUTPUT_NAME, [len(manifest.dst), -1, -1])]),
        "dynamic_batching {",
        f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]" if preferred else "",
        f"  max_queue_delay_microseconds: {queue_delay_us}",
        "}",
        *(f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}' for key, value in parameters.items()),
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _tensor_block(kind: str, tensors: Sequence[tuple[str, Sequence[int]]]) -> str:
    # dims exclude the batch axis (Triton adds it because max_batch_size > 0); -1 = any H, W.
    entries = ",\n".join(
        f'  {{\n    name: "{name}"\n    data_type: TYPE_FP32\n    dims: [ {", ".join(map(str, dims))} ]\n  }}'
        for name, dims in tensors
    )
    return f"{kind} [\n{entries}\n]"


def write_triton_model(model_dir: str | Path, out_dir: str | Path, symlink: bool = False, **config: Any) -> Path:
    """Write one model of a store into the Triton repository ``out_dir``; returns its folder.

    The model file and manifest are checked against the manifest's digest first, as the service
    does (:func:`synnet.store.read_manifest`). The new folder is assembled beside its destination
    and renamed into place (:func:`synnet.store.staged_folder`), so a Triton server polling the
    repository never loads half a model.

    Args:
        model_dir: ``<store>/<name>`` holding ``manifest.json`` and the TorchScript file.
        out_dir: the Triton model repository (created if missing).
        symlink: link ``model.pt`` instead of copying it (for a repository on the same machine);
            an any-to-any model always gets its wrapper written.
        config: ``max_batch_size``, ``preferred_batch_sizes``, ``queue_delay_us`` for :func:`config_pbtxt`.

    Raises:
        TritonExportError: the model file is missing or does not match its manifest, or an any-to-any
            model's wrapper does not reproduce it.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    try:
        manifest = read_manifest(model_dir)
    except StoreError as error:
        raise TritonExportError(f"{model_dir}: {error}") from None
    model_file = model_dir / manifest.model_file
    with staged_folder(out_dir, manifest.name) as staging:
        (staging / "config.pbtxt").write_text(config_pbtxt(manifest, **config))
        shutil.copyfile(model_dir / MANIFEST_FILE, staging / MANIFEST_FILE)
        version_dir = staging / str(triton_version(manifest))
        version_dir.mkdir()
        # Triton's PyTorch backend looks for model.pt whatever the store called the file.
        if manifest.any_to_any:  # a new file even with symlink: Triton needs present required
            try:
                write_required_present(model_file, version_dir / MODEL_FILE, len(manifest.src))
            except TritonSignatureError as error:
                raise TritonExportError(str(error)) from None
        elif symlink:
            os.symlink(model_file.resolve(), version_dir / MODEL_FILE)
        else:
            shutil.copyfile(model_file, version_dir / MODEL_FILE)
    target = out_dir / manifest.name
    logger.info("%s -> %s (%s -> %s)", model_dir, target, *map(format_modalities, manifest.config_key))
    return target


def write_triton_repository(
    store_dir: str | Path, out_dir: str | Path, names: Sequence[str] | None = None, symlink: bool = False, **config: Any
) -> list[Path]:
    """Write every model of the store (or only ``names``) into a Triton repository.

    Args:
        store_dir: the synnet model store, one folder per model.
        out_dir: the Triton model repository.
        names: model folder names to export; default every folder holding a manifest.
        symlink, config: as in :func:`write_triton_model`.

    Returns:
        The written model folders, in name order.

    Raises:
        TritonExportError: the store has no such models, or one of them fails its checks.
    """
    store = Path(store_dir)
    available = sorted(p.parent.name for p in store.glob(f"*/{MANIFEST_FILE}") if not p.parent.name.startswith("."))
    wanted = list(names) if names else available
    missing = sorted(set(wanted) - set(available))
    if missing or not wanted:
        raise TritonExportError(
            f"model store {store} has no model(s) {missing or ''}; available: {', '.join(available) or 'none'}"
        )
    return [write_triton_model(store / name, out_dir, symlink=symlink, **config) for name in sorted(wanted)]


def main(argv: list[str] | None = None) -> int:
    """``python -m training.triton --store model_store --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.triton",
        description="Write a Triton Inference Server model repository (config.pbtxt + <version>/model.pt) "
        "for the models of a synnet model store.",
    )
    parser.add_argument("--store", type=Path, default=Path("model_store"), help="model store (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="Triton model repository to write")
    parser.add_argument("--model", action="append", dest="names", metavar="NAME", help="only this model (repeatable)")
    parser.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE, help="(default: %(default)s)")
    parser.add_argument(
        "--preferred-batch-sizes",
        default=",".join(map(str, DEFAULT_PREFERRED_BATCH_SIZES)),
        help="comma-separated (default: %(default)s)",
    )
    parser.add_argument("--queue-delay-us", type=int, default=DEFAULT_QUEUE_DELAY_US, help="(default: %(default)s)")
    parser.add_argument("--symlink", action="store_true", help="link model.pt instead of copying it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        preferred = [int(size) for size in args.preferred_batch_sizes.split(",") if size.strip()]
    except ValueError:
        parser.error(f"--preferred-batch-sizes must be integers, got {args.preferred_batch_sizes!r}")
    try:
        written = write_triton_repository(
            args.store,
            args.out,
            args.names,
            symlink=args.symlink,
            max_batch_size=args.max_batch_size,
            preferred_batch_sizes=preferred,
            queue_delay_us=args.queue_delay_us,
        )
    except (ValueError, OSError) as error:  # SynnetError, and an unreadable or invalid manifest
        print(f"error: {error}", file=sys.stderr)
        return 2
    logger.info("wrote %d model(s) to %s", len(written), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
