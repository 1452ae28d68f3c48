"""Draw the edge weights ω of the joint loss for a real T1 and T2 slice (the paper's Fig. 3).

    python -m experiments.figures.edge_weights --data /path/to/brats18 [--case ID] [--slice Z]

Each volume is normalized to model space like the training targets (brain mask = union of the
nonzero voxels of both images, :func:`synnet.normalization.normalize`), one axial slice is taken
and ω = :func:`training.losses.edge_weights` of it is shown beside the image.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from synnet.imageio import read_image
from synnet.normalization import brain_mask, normalize
from training.losses import EDGE_WEIGHT, edge_weights

logger = logging.getLogger(__name__)

MODALITY_SUFFIXES = {"T1": "t1", "T2": "t2"}


def _volume(case_dir: Path, suffix: str) -> np.ndarray:
    matches = sorted(case_dir.glob(f"*_{suffix}.nii*"))
    if not matches:
        raise FileNotFoundError(f"no *_{suffix}.nii[.gz] in {case_dir}")
    return read_image(matches[0])[0]


def _pick_slice(case_dir: Path, mask: np.ndarray) -> int:
    """The axial slice with the most tumour (if a segmentation exists), else the most brain."""
    segs = sorted(case_dir.glob("*_seg.nii*"))
    labels = read_image(segs[0])[0] > 0 if segs else mask
    return int(labels.sum(axis=(0, 1)).argmax())


def slice_weights(case_dir: Path, z: int | None, w: float) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Normalized T1 and T2 slices of one case and their edge weights: z, {name: (image, ω)}, (X, Y)."""
    volumes = {name: _volume(case_dir, suffix) for name, suffix in MODALITY_SUFFIXES.items()}
    mask = brain_mask(list(volumes.values()))
    z = _pick_slice(case_dir, mask) if z is None else z
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, volume in volumes.items():
        image = normalize(volume, mask)[0][:, :, z]
        omega = edge_weights(torch.from_numpy(image)[None, None], w=w)[0, 0].numpy()
        out[name] = (image, omega)
    return z, out


def draw(panels: dict[str, tuple[np.ndarray, np.ndarray]], w: float, title: str, out: Path) -> None:
    """Write a 2×2 figure: each modality's image (left) and its ω (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 2, figsize=(7.2, 3.6 * len(panels)), constrained_layout=True)
    for row, (name, (image, omega)) in enumerate(panels.items()):
        # (X, Y) slice → rows = Y (anterior up), cols = X, the usual radiological-style view
        axes[row, 0].imshow(np.rot90(image), cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_title(f"{name} (model space)")
        shown = axes[row, 1].imshow(np.rot90(omega), cmap="inferno", vmin=1, vmax=1 + w)
        axes[row, 1].set_title(f"ω = 1 + {w:g}·edge({name})")
        fig.colorbar(shown, ax=axes[row, 1], fraction=0.046, pad=0.02)
        for ax in axes[row]:
            ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a BraTS folder with one sub-folder per case")
    parser.add_argument("--case", help="case folder name (default: the first one, sorted)")
    parser.add_argument("--slice", type=int, default=None, help="axial index z (default: largest tumour area)")
    parser.add_argument("--w", type=float, default=EDGE_WEIGHT, help="edge weight w in ω = 1 + w·edge")
    parser.add_argument("--out", type=Path, default=Path("docs/edge_weights.png"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cases = sorted(p for p in args.data.iterdir() if p.is_dir())
    case_dir = args.data / args.case if args.case else cases[0]
    z, panels = slice_weights(case_dir, args.slice, args.w)
    title = f"Edge weights of the joint loss, BraTS case {case_dir.name}, axial slice z={z}"
    draw(panels, args.w, title, args.out)
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
