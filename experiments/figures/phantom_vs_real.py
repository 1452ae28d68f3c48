"""Side-by-side montage of a generated case and a real BraTS case (docs/phantom_vs_real.png).

    python -m experiments.figures.phantom_vs_real --real ../shared/data/brats18/Brats18_TCIA01_201_1 \\
        --seed 0 --level 89 --out docs/phantom_vs_real.png

Both cases are shown at the same axial level (by default the phantom's largest tumour slice), each
image windowed at its 0.5 / 99.5 percentiles inside the brain, in radiological orientation
(anterior up, patient's left on the right).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from synnet.modalities import Modality
from training.data.brats import find_cases, load_case
from training.phantom.generate import generate_case
from training.phantom.write import case_seed

MODALITIES = (Modality.T1, Modality.T1c, Modality.T2, Modality.FLAIR)
# seg label -> colour: 1 necrotic core (red), 2 oedema (green), 4 enhancing (yellow)
SEG_COLOURS = ListedColormap(["none", "red", "limegreen", "none", "yellow"])


def _window(image: np.ndarray) -> np.ndarray:
    brain = image[image > 0]
    lo, hi = np.percentile(brain, [0.5, 99.5]) if brain.size else (0.0, 1.0)
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0.0, 1.0) * (image > 0)


def _display(axial: np.ndarray) -> np.ndarray:
    # BraTS (X, Y): x runs to the patient's left, y to posterior; show y down the rows.
    return axial.T


def make_montage(real_case_dir: Path, seed: int, out: Path, level: int | None = None) -> Path:
    """Render the montage and return its path."""
    phantom = generate_case(case_seed(seed, 0))
    real_cases = [c for c in find_cases(real_case_dir.parent) if c.folder == real_case_dir]
    if not real_cases:
        raise FileNotFoundError(f"no BraTS case folder at {real_case_dir}")
    real = load_case(real_cases[0], MODALITIES)
    if level is None:
        level = int(np.argmax((phantom["seg"] > 0).sum(axis=(0, 1))))
    rows = [
        (f"generated (dataset seed {seed}, case 0)", {m: phantom[m] for m in MODALITIES}, phantom["seg"]),
        (f"real: {real.case_id}", real.images, real.seg),
    ]
    fig, axes = plt.subplots(2, 5, figsize=(15, 6.6), facecolor="black")
    for row, (label, images, seg) in enumerate(rows):
        for col, modality in enumerate(MODALITIES):
            ax = axes[row, col]
            ax.imshow(_display(_window(images[modality][:, :, level])), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{label}\n{modality.value}" if col == 0 else modality.value, color="white", fontsize=10)
        ax = axes[row, 4]
        ax.imshow(_display(_window(images[Modality.FLAIR][:, :, level])), cmap="gray", vmin=0, vmax=1)
        if seg is not None:
            labels = np.ma.masked_equal(_display(seg[:, :, level]).astype(int), 0)
            ax.imshow(labels, cmap=SEG_COLOURS, vmin=0, vmax=4, alpha=0.45, interpolation="nearest")
        ax.set_title("seg: core / oedema / enhancing", color="white", fontsize=10)
    for ax in axes.flat:
        ax.set_xlim(25, 215)
        ax.set_ylim(235, 25)
        ax.axis("off")
    fig.suptitle(f"axial slice z = {level}", color="white")
    fig.text(
        0.5,
        0.01,
        "generated: training.phantom (MNI152 2009a anatomy from nilearn, MR signal equations)    "
        "real: BraTS 2018 (Menze et al., IEEE TMI 2015; Bakas et al., Sci. Data 2017)",
        color="0.7",
        fontsize=8,
        ha="center",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, facecolor="black")
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    prog = "python -m experiments.figures.phantom_vs_real"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=Path, required=True, help="one real BraTS case folder")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed of the generated case (its case 0)")
    parser.add_argument("--level", type=int, default=None, help="axial index z (default: phantom's tumour)")
    parser.add_argument("--out", type=Path, default=Path("docs/phantom_vs_real.png"))
    args = parser.parse_args(argv)
    print(make_montage(args.real, args.seed, args.out, args.level))
    return 0


if __name__ == "__main__":
    sys.exit(main())
