"""The figure of an evaluation report: sources, truth, synthesized and |error| on a few axial slices."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synnet.modalities import Modality

Column = tuple[str, np.ndarray, str]  # title, (X, Y, Z) volume in model space, colour map


def figure_columns(
    model_space: dict[Modality, np.ndarray], src: Sequence[Modality], synthesized: dict[Modality, np.ndarray]
) -> list[Column]:
    """One column per source, then truth, synthesized and |error| per target (each (X, Y, Z), model space)."""
    columns: list[Column] = [(f"{m.value} (source)", model_space[m], "gray") for m in src]
    for target, y in synthesized.items():
        truth = model_space[target]
        columns.append((f"{target.value} truth", truth, "gray"))
        columns.append((f"{target.value} synthesized", y, "gray"))
        columns.append((f"|error| {target.value}", np.abs(y - truth), "magma"))
    return columns


def held_out_figure(
    columns: list[Column],
    mask: np.ndarray,
    seg: np.ndarray | None,
    title: str,
    path: Path,
    n_slices: int = 3,
    dpi: int = 90,
) -> None:
    """``columns`` on ``n_slices`` axial slices through the tumour (or the brain), cropped to the brain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    focus = seg > 0 if seg is not None and seg.any() else mask
    zs = np.flatnonzero(focus.any(axis=(0, 1)))
    chosen = zs[np.linspace(0, len(zs) - 1, n_slices + 2).round().astype(int)[1:-1]]
    rows, cols = np.nonzero(mask.any(axis=2))
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    fig, axes = plt.subplots(len(chosen), len(columns), figsize=(2.2 * len(columns), 2.4 * len(chosen)), squeeze=False)
    for r, z in enumerate(chosen):
        for c, (name, volume, cmap) in enumerate(columns):
            ax = axes[r, c]
            vmax = 0.5 if cmap == "magma" else 1.0
            ax.imshow(np.rot90(volume[box[0], box[1], z]), cmap=cmap, vmin=0.0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"z = {z}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
