"""A card's figure, ``card.png``: one axial slice of the BraTS 2023 case (test data), with the sources, then per
target the truth, the synthesis and |synthesis − truth|, in model space. Drawn only where the data are at hand."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from synnet.inference import synthesize
from synnet.modalities import Modality
from synnet.model_card import FIGURE_FILE
from synnet.normalization import normalize_target
from synnet.store import load_model
from training.data.brats import find_cases, load_case
from training.evaluation_figure import figure_columns, held_out_figure

# small enough to commit one per model: one slice at this resolution is about 60 kB
FIGURE_DPI = 60


def draw_figure(folder: Path, case_folder: Path, src: Sequence[Modality], targets: Sequence[Modality]) -> Path:
    """Synthesize ``targets`` from ``src`` of the first case in ``case_folder`` with the model in ``folder``.

    The case is run as the service runs an upload (its brain: the sources' nonzero voxels, or its mask file).
    """
    model = load_model(folder, torch.device("cpu"))
    case = find_cases(case_folder)[0]
    loaded = load_case(case, [*src, *targets], load_seg=False)
    mask = loaded.brain_mask(src)
    y, _ = synthesize(model.forward, {m: loaded.images[m] for m in src}, mask, model.manifest, batch_size=4)
    norm = model.manifest.normalization
    model_space = {m: normalize_target(loaded.images[m], mask, norm)[0] for m in (*src, *targets)}
    synthesized = {t: y[model.manifest.dst.index(t)] for t in targets}
    path = folder / FIGURE_FILE
    title = f"{model.name} on {case.case_id} (BraTS 2023, test data)"
    held_out_figure(figure_columns(model_space, src, synthesized), mask, None, title, path, n_slices=1, dpi=FIGURE_DPI)
    return path
