"""The any-to-any model's TorchScript in a form Triton's PyTorch backend loads.

The store's unified model declares ``forward(x: Tensor, present: Optional[Tensor] = None)``, and
Triton's libtorch backend refuses to load a model with an argument that is not a plain ``Tensor``
(``Tensor?`` included). So the Triton repository gets a thin scripted wrapper whose
``forward(x: Tensor, present: Tensor)`` calls the served module unchanged; it is checked to give
exactly the served model's output on every availability pattern before it is written.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import torch
from torch import nn

from synnet.errors import SynnetError

# The check's spatial size: small, and a multiple of 2**depth for every depth we train.
CHECK_SIZE = 32


class TritonSignatureError(SynnetError):
    code = "triton_export_failed"


class RequiredPresent(nn.Module):
    """``forward(x (B, 4, H, W), present (B, 4) float) -> (B, 4, H, W)`` with both arguments required."""

    def __init__(self, served: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.served = served

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return self.served(x, present)


def availability_patterns(n_modalities: int) -> torch.Tensor:
    """Every non-empty proper subset of the modalities as a ``present`` row: (2**n - 2, n) float32."""
    rows = [
        [1.0 if i in chosen else 0.0 for i in range(n_modalities)]
        for k in range(1, n_modalities)
        for chosen in combinations(range(n_modalities), k)
    ]
    return torch.tensor(rows, dtype=torch.float32)


def write_required_present(model_file: str | Path, out_file: str | Path, n_modalities: int) -> None:
    """Write the wrapper of the any-to-any TorchScript ``model_file`` to ``out_file`` and verify it.

    Args:
        model_file: the store's TorchScript file, ``forward(x (B, n, H, W), present (B, n))``.
        out_file: where the wrapper goes (Triton's ``<version>/model.pt``).
        n_modalities: the channels of ``x`` and ``present`` (``len(manifest.src)``).

    Raises:
        TritonSignatureError: the reloaded wrapper does not reproduce the served model exactly.
    """
    served = torch.jit.load(str(model_file), map_location="cpu").eval()
    torch.jit.save(torch.jit.script(RequiredPresent(served)), str(out_file))
    reloaded = torch.jit.load(str(out_file), map_location="cpu")
    present = availability_patterns(n_modalities)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(len(present), n_modalities, CHECK_SIZE, CHECK_SIZE, generator=generator) * present[:, :, None, None]
    with torch.inference_mode():
        expected, actual = served(x, present), reloaded(x, present)
    if not torch.equal(actual, expected):
        difference = float((actual - expected).abs().max())
        raise TritonSignatureError(f"the Triton wrapper of {model_file} differs from it by {difference:.3g}")
