"""``model.pt2``: the network of ``model.pt`` as a ``torch.export`` program, written and verified beside it.

TorchScript is deprecated upstream; the exported program is what ``torch.compile``, AOTInductor
and future torch releases load. Every export writes both (:func:`training.export.write_model`),
and ``python -m training.export --programs`` adds the program to models exported before.

The program is made from the eager module (rebuilt from ``model.pt`` when it holds a loaded
TorchScript network, :mod:`training.rebuild`), exported with the batch and the in-plane size free,
saved, loaded back the way the store loads it (:mod:`synnet.program`), and compared with
``model.pt`` on the export's own check input, on every source set of an any-to-any model, and on
sizes off the model's pooling grid (where it pads).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
import torch.fx.experimental._config as symbolic_shapes
from torch import nn

from synnet.errors import SynnetError
from synnet.manifest import MODEL_FILE, PROGRAM_FILE, ModelManifest
from synnet.program import load_program
from training.rebuild import eager_model, reference_inputs

logger = logging.getLogger(__name__)

Inputs = tuple[torch.Tensor, ...]


class ProgramError(SynnetError):
    """The exported program cannot be made, or does not give model.pt's outputs."""

    code = "export_failed"


def program_dims(manifest: ModelManifest) -> tuple[dict[int, object], ...]:
    """``dynamic_shapes`` of the export: any batch, H and W anywhere from ``input.min_size`` to ``input.max_size``."""
    batch = torch.export.Dim("batch", min=1)
    low, high = manifest.input.min_size, manifest.input.max_size
    height, width = torch.export.Dim("height", min=low, max=high), torch.export.Dim("width", min=low, max=high)
    image = {0: batch, 2: height, 3: width}
    return (image, {0: batch}) if manifest.any_to_any else (image,)


def _off_grid(manifest: ModelManifest) -> tuple[int, int]:
    """An H ≠ W, both padded by the model (unless its grid is 1)."""
    height = max(2 * manifest.input.multiple_of, manifest.input.min_size) + 3
    return height, height + manifest.input.multiple_of + 2


def _inputs(manifest: ModelManifest, batch: int, size: tuple[int, int], seed: int) -> Inputs:
    x = torch.rand(batch, manifest.input_channels, *size, generator=torch.Generator().manual_seed(seed))
    if not manifest.any_to_any:
        return (x,)
    present = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 0], [0, 1, 0, 1]], dtype=torch.float32)[torch.arange(batch) % 3]
    return x * present[:, :, None, None], present


def export_program(model: nn.Module, manifest: ModelManifest, path: Path) -> None:
    """``torch.export`` ``model`` (eager, eval mode) with :func:`program_dims` and save it to ``path``."""
    model.eval()
    try:
        # size-oblivious: a 1×1 deepest map (H = 16) and a padding of 0 stay inside the dims, not special cases
        with symbolic_shapes.patch(backed_size_oblivious=True), torch.no_grad():
            # batch 2 and H ≠ W off the grid: no size is taken for a constant
            sample = _inputs(manifest, 2, _off_grid(manifest), seed=2)
            program = torch.export.export(model, sample, dynamic_shapes=program_dims(manifest))
    except Exception as error:  # torch.export reports unsupported code with many types
        raise ProgramError(f"cannot torch.export {type(model).__name__}: {str(error).splitlines()[0]}") from error
    drop_stack_traces(program.graph_module)
    torch.export.save(program, str(path))


def drop_stack_traces(graph_module: torch.fx.GraphModule) -> None:
    """Remove the Python stack trace each node records, in every branch graph too.

    Debugging aids only, and large: inside a ``torch.cond`` branch every node's trace quotes the
    branch call with all its lifted weights, 70 KB a node, 70 MB of the unified model's program.
    """
    for module in graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            for node in module.graph.nodes:
                node.meta.pop("stack_trace", None)


def check_inputs(manifest: ModelManifest, example: Inputs) -> list[Inputs]:
    """model.pt's own check input, every source set (any-to-any), sizes off the pooling grid and the smallest."""
    grid, low = manifest.input.multiple_of, manifest.input.min_size
    off_grid = _inputs(manifest, 3, _off_grid(manifest)[::-1], seed=3)
    smallest = _inputs(manifest, 1, (low, low), seed=4)
    return [example, *reference_inputs(manifest, size=max(2 * grid, low)), off_grid, smallest]


def verify_program(folder: Path, manifest: ModelManifest, example: Inputs, atol: float) -> float:
    """Largest difference between the program, run as the store runs it, and ``model.pt``.

    Raises:
        ProgramError: a shape differs, or a value by more than ``atol``.
    """
    program = load_program(folder / PROGRAM_FILE, torch.device("cpu"))
    with warnings.catch_warnings():  # model.pt is TorchScript on purpose: the reference
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=DeprecationWarning)
        reference = torch.jit.load(str(folder / MODEL_FILE), map_location="cpu")
    worst = 0.0
    for inputs in check_inputs(manifest, example):
        with torch.no_grad():
            expected, actual = reference(*inputs), program(*inputs)
        size = "×".join(str(s) for s in inputs[0].shape[2:])
        if actual.shape != expected.shape:
            shapes = f"{tuple(actual.shape)} for a {size} input, model.pt {tuple(expected.shape)}"
            raise ProgramError(f"the program returns {shapes}")
        difference = float((actual - expected).abs().max())
        if not difference <= atol:  # also catches NaN
            raise ProgramError(
                f"the program differs from model.pt by {difference:.3g} on a {size} input (allowed {atol:g})"
            )
        worst = max(worst, difference)
    return worst


def write_program(folder: Path, manifest: ModelManifest, model: nn.Module | None, example: Inputs, atol: float) -> str:
    """Export ``model`` to ``folder/model.pt2`` and verify it against ``folder/model.pt``; returns the file name.

    Without ``model``, or when it holds a loaded TorchScript network (the calibration and flip
    wrappers), the eager module is rebuilt from model.pt (:func:`training.rebuild.eager_model`).
    """
    holds_torchscript = model is None or any(isinstance(m, torch.jit.ScriptModule) for m in model.modules())
    eager = eager_model(folder / MODEL_FILE, manifest) if holds_torchscript else model
    export_program(eager, manifest, folder / PROGRAM_FILE)
    difference = verify_program(folder, manifest, example, atol)
    logger.debug("%s: the exported program matches model.pt (max |diff| %.2g)", manifest.name, difference)
    return PROGRAM_FILE
