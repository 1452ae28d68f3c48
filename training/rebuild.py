"""The eager module inside a frozen ``model.pt``, rebuilt from its manifest and the file's constants.

Why it exists: ``torch.export`` needs an ``nn.Module``, and a frozen TorchScript file holds none:
freezing turns every weight into a constant of one inlined graph. The bundled models have no
training checkpoint beside them, and the calibrated and flip-averaged ones were written by
wrapping a *loaded* TorchScript network, so the exported program of every model is made from its
``model.pt`` itself. That also makes the two files the same network by construction.

How: the manifest says which registered network was built (``architecture``) and which wrappers
model.pt adds (``output_calibration`` inside ``flip_ensemble``). That module is built with a
distinct value in every tensor, scripted and frozen the way the export does it, and its graph is
walked beside model.pt's graph: each tensor constant a node of model.pt reads sits at the same
place as the fresh graph's constant that came from a known parameter or buffer. The values found
there are loaded into the module. :func:`eager_model` then requires the rebuilt module to give
exactly model.pt's outputs on every source set, so a wrong pairing cannot go unnoticed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from synnet.errors import SynnetError
from synnet.manifest import ModelManifest
from training.models import create_model
from training.models.flip_average import FlipAveragedAnyToAny, FlipAveragedDedicated
from training.models.output_calibration import CalibratedAnyToAny, CalibratedDedicated, QuantileMap

# What freezing leaves of a BatchNorm's step counter: nothing (eval mode never reads it).
UNREAD_STATE = ("num_batches_tracked",)


class RebuildError(SynnetError):
    """model.pt does not hold the network its manifest describes."""

    code = "export_failed"


def model_structure(manifest: ModelManifest) -> nn.Module:
    """The module model.pt was frozen from, per the manifest, with placeholder weights."""
    params = dict(manifest.architecture.params)
    n_src, n_dst = params.pop("n_src"), params.pop("n_dst")
    params.pop("arch", None)  # model_config()'s copy of the name, where a caller kept it
    model: nn.Module = create_model(manifest.architecture.name, n_src, n_dst, **params)
    rows = 2 ** len(manifest.src) if manifest.any_to_any else 1
    if manifest.output_calibration is not None:
        knots = torch.linspace(0.0, 1.0, manifest.output_calibration.quantiles).repeat(rows, n_dst, 1)
        calibration = QuantileMap(knots, knots.clone(), torch.zeros(rows, n_dst, dtype=torch.bool))
        model = (CalibratedAnyToAny if manifest.any_to_any else CalibratedDedicated)(model, calibration)
    if manifest.flip_ensemble is not None:
        active = torch.ones(rows, n_dst, dtype=torch.bool)
        model = (FlipAveragedAnyToAny if manifest.any_to_any else FlipAveragedDedicated)(model, active)
    return model.eval()


def constant_reads(graph: torch.Graph) -> list[tuple[str, int, torch.Tensor]]:
    """Every read of a tensor constant, in graph order: (reading node's kind, input position, value)."""
    reads: list[tuple[str, int, torch.Tensor]] = []

    def walk(block: torch.Block) -> None:
        for node in block.nodes():
            for position, value in enumerate(node.inputs()):
                if value.node().kind() == "prim::Constant" and value.type().isSubtypeOf(torch._C.TensorType.get()):
                    reads.append((node.kind(), position, value.toIValue()))
            for inner in node.blocks():
                walk(inner)

    walk(graph)
    return reads


def _frozen(module: nn.Module) -> torch.jit.ScriptModule:
    # as training.export.export_torchscript freezes: no numerics changes, so the graphs line up
    return torch.jit.freeze(torch.jit.script(module), optimize_numerics=False)


def _distinct_values(module: nn.Module) -> dict[int, str]:
    """Give every parameter and buffer values no other holds (freezing pools equal constants); storage → name."""
    generator = torch.Generator().manual_seed(0)
    owner: dict[int, str] = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        if name.rsplit(".", 1)[-1] in UNREAD_STATE:
            continue
        with torch.no_grad():
            if tensor.dtype.is_floating_point:  # values in [n, n + 1): no two tensors alike
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + len(owner))
            elif tensor.dtype == torch.bool:  # the bits of n + 1, repeated: no two flag tables alike
                bits = (len(owner) + 1) >> torch.arange(tensor.numel()) % 16 & 1
                tensor.copy_(bits.bool().view(tensor.shape))
        owner[tensor.data_ptr()] = name
    return owner


def weights_from_graph(module: nn.Module, frozen_file: torch.jit.ScriptModule) -> dict[str, torch.Tensor]:
    """The state of ``module`` read from ``frozen_file``'s constants (see the module docstring)."""
    owner = _distinct_values(module)
    fresh_reads = constant_reads(_frozen(module).graph)
    file_reads = constant_reads(frozen_file.graph)
    if [r[:2] for r in fresh_reads] != [r[:2] for r in file_reads]:
        raise RebuildError(
            f"model.pt's graph reads {len(file_reads)} tensor constants, the manifest's architecture "
            f"{len(fresh_reads)} (or in another order): the file is not that network"
        )
    state: dict[str, torch.Tensor] = {}
    for (kind, position, placeholder), (_, _, value) in zip(fresh_reads, file_reads, strict=True):
        name = owner.get(placeholder.data_ptr())
        if name is None:
            continue  # a constant the code makes itself (an empty tensor, a flip's dims)
        if name in state and not torch.equal(state[name], value):
            raise RebuildError(f"{name} is read with two different values in model.pt ({kind}, input {position})")
        state[name] = value.detach().clone()
    missing = sorted(set(owner.values()) - set(state))
    if missing:
        raise RebuildError(f"model.pt's graph never reads {', '.join(missing[:5])}")
    return state


def eager_model(model_file: str | Path, manifest: ModelManifest) -> nn.Module:
    """The eager module ``model_file`` (frozen TorchScript) was made from, checked to give its exact outputs.

    Raises:
        RebuildError: the file is not the network its manifest describes, or the rebuilt module
            gives other outputs on any source set.
    """
    with warnings.catch_warnings():  # TorchScript is the file being read, deliberately
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=DeprecationWarning)
        frozen_file = torch.jit.load(str(model_file), map_location="cpu")
    model = model_structure(manifest)
    state = weights_from_graph(model, frozen_file)
    try:
        model.load_state_dict(state, strict=False)  # the unread step counters keep their defaults
    except RuntimeError as error:
        raise RebuildError(f"model.pt's weights do not fit the manifest's architecture: {str(error)[:300]}") from error
    for inputs in reference_inputs(manifest):
        with torch.no_grad():
            expected, actual = frozen_file(*inputs), model(*inputs)
        if not torch.equal(expected, actual):
            difference = float((expected - actual).abs().max())
            raise RebuildError(f"the module rebuilt from {Path(model_file).name} differs from it by {difference:.3g}")
    return model


def reference_inputs(manifest: ModelManifest, size: int = 48) -> list[tuple[torch.Tensor, ...]]:
    """Inputs every source set of the model runs on: one batch per availability row for an any-to-any model."""
    generator = torch.Generator().manual_seed(1)
    channels = manifest.input_channels
    if not manifest.any_to_any:
        return [(torch.rand(3, channels, size, size + 16, generator=generator),)]
    rows = torch.arange(1, 2**channels - 1)  # every non-empty proper subset: the source sets served
    present = ((rows[:, None] >> torch.arange(channels)) & 1).float()
    x = torch.rand(len(rows), channels, size, size + 16, generator=generator) * present[:, :, None, None]
    # all source sets in one batch (every decoder and view runs), then each alone (the others are skipped)
    alone = [(x[i : i + 1].repeat(2, 1, 1, 1), present[i : i + 1].repeat(2, 1)) for i in range(len(rows))]
    return [(x, present), *alone]
