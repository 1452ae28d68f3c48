"""The exported program (``model.pt2``) as the store runs it.

``torch.export.load`` gives an ``ExportedProgram``; its ``module()`` is the network, called like
``model.pt``: ``forward(x (B, C, H, W))``, or ``forward(x, present (B, M))`` for an any-to-any
model, with any batch and any H, W from ``input.min_size`` to ``input.max_size`` (the export
kept those free, :func:`training.program.program_dims`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def load_program(path: str | Path, device: torch.device) -> nn.Module:
    """The program saved at ``path`` as a module on ``device``.

    Not put in eval mode: an exported program's module refuses ``.eval()``; it was exported in eval mode.
    """
    return torch.export.load(str(path)).module().to(device)
