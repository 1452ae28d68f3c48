"""An exported program served through ``torch.compile`` (inductor), compiled at load, not on a user's request.

Shapes decide how often it compiles. The service's forwards differ in batch (chunks of 1 to
``max_batch_size`` slices, the last chunk of a volume shorter) and in-plane size (each volume's
brain box, on the model's 16-pixel grid; a PNG's whole slice). Compiling each shape would never
end, so the program is compiled with every size symbolic (``dynamic=True``). Dynamo still splits
the shapes where a kernel choice changes: it specialises a batch of 1, and oneDNN's convolution
path for one slice changes past 20480 pixels, so the warm-up (:data:`WARMUP_SHAPES`) compiles one
graph for batches of 2 to 15 and two for a single slice, small and large, before the model is
ready. :class:`CountingBackend` counts what is compiled afterwards, so ``/readyz`` shows whether
serving ever recompiles.

Inductor keeps what it compiled on disk (``TORCHINDUCTOR_CACHE_DIR``, by default
``/tmp/torchinductor_<user>``): a restart that finds it there compiles in a fraction of the time
(docs/service.md has both times).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

# Freezing: the weights become constants inductor can pack for oneDNN once, instead of arguments of
# every call. With sizes symbolic, SynNet ran no faster compiled than as TorchScript without it
# (0.34 s against 0.33 s for 4 slices of 144×192 on two cores) and 1.7× faster with it.
INDUCTOR_OPTIONS = {"freezing": True}
# Warm-up inputs (batch, H, W), H ≠ W so neither is taken for the other: a general batch (every size
# symbolic), one small slice (dynamo's batch-1 graph) and one slice over 20480 pixels (oneDNN's other path).
WARMUP_SHAPES = ((2, 32, 48), (1, 32, 48), (1, 144, 160))


class CountingBackend:
    """Inductor, counting the graphs it is given (one per compile or recompilation of this model)."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, graph: torch.fx.GraphModule, example_inputs: Sequence[torch.Tensor]) -> Callable[..., object]:
        from torch._inductor.compile_fx import compile_fx  # imported on use: inductor is heavy

        self.graphs += 1
        return compile_fx(graph, example_inputs, config_patches=INDUCTOR_OPTIONS)


@dataclass
class CompileReport:
    """What compiling one model took, and whether serving made it compile again."""

    seconds: float
    warmup_graphs: int
    backend: CountingBackend

    @property
    def recompilations(self) -> int:
        """Graphs compiled since the warm-up: shapes the warm-up did not cover."""
        return self.backend.graphs - self.warmup_graphs


def compile_program(program: nn.Module, warm_up: Callable[[Callable[..., torch.Tensor]], None]) -> tuple[
    Callable[..., torch.Tensor], CompileReport
]:  # fmt: skip
    """``program`` through ``torch.compile`` with symbolic sizes, warmed up by ``warm_up(compiled)``.

    Raises:
        whatever inductor raises when it cannot compile the program (the store then serves it uncompiled).
    """
    backend = CountingBackend()
    compiled = torch.compile(program, backend=backend, dynamic=True)
    started = time.perf_counter()
    warm_up(compiled)
    report = CompileReport(time.perf_counter() - started, backend.graphs, backend)
    return compiled, report
