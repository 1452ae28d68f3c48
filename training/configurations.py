"""An any-to-any model scored on every single-target configuration.

``python -m training.evaluate --all-configurations`` runs this for each any-to-any model it
evaluates. For each case and each of the 14 source sets (one, two or three of the four
modalities) the model synthesizes every missing modality once, through the service's volume
pipeline; each (sources, target) pair is then one of the 28 single-target configurations,
scored with the columns the table shows (:func:`configuration_scores`).

Reports: ``per_configuration.csv`` (one row per model, dataset, case, sources, target; a case
with the model's rows is reused, any other is scored again; other models' rows are kept),
``configurations.md`` (mean ± std per configuration and dataset, with
the scores the store records for dedicated models of the same configuration), and, with
``--write-evaluation``, the model's ``evaluation.json``: the main dataset's ``configurations`` that
routing reads, and each ``--also`` dataset's as a test dataset (cases the model was trained on left out).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from synnet.dataset_layout import CaseFiles
from synnet.evaluation import EvaluationRecord
from synnet.inference import synthesize
from synnet.manifest import ModelManifest
from synnet.metrics import WINDOW_SIZE, brain_scores, brasyn_scores, psnr
from synnet.modalities import Modality
from synnet.routing import all_configurations
from synnet.scores import TargetMetrics
from synnet.store import LoadedModel
from training.data.brats import find_cases, load_case
from training.evaluation_record import save_evaluation, unseen_cases
from training.model_space import ModelSpaceImages
from training.scoring import (
    METRICS,
    Summary,
    as_float,
    brasyn_truth,
    pm,
    read_rows,
    summarize,
    write_rows,
)

logger = logging.getLogger(__name__)

Configuration = tuple[tuple[Modality, ...], Modality]
# a column of the configuration table beside the model's: header, and the cell of (sources, target) on a dataset
Column = tuple[str, Callable[[str, str, str], str]]
# the single-target ones of routing's 50, in its canonical order; and the source sets they use
CONFIGURATIONS: list[Configuration] = [(s, d[0]) for s, d in all_configurations() if len(d) == 1]
SOURCE_SETS: list[tuple[Modality, ...]] = list(dict.fromkeys(s for s, _ in CONFIGURATIONS))
KEY_FIELDS = ("model", "dataset", "case", "sources", "target")


def sources_key(sources: Sequence[Modality]) -> str:
    return ",".join(m.value for m in sources)


def training_folders(manifest: ModelManifest, data: Path) -> list[Path]:
    """``data`` and the ``--extra-data`` folder the model was trained with, when it is here."""
    extra = manifest.training.get("extra_data")
    return [data, *([Path(extra)] if extra and Path(extra).is_dir() else [])]


def configuration_scores(
    pred: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray,
    seg: np.ndarray | None,
    raw_truth: np.ndarray,
    *,
    brasyn: bool = False,
) -> dict[str, float]:
    """The columns the configuration table shows: whole PSNR, brain PSNR/SSIM and, with ``brasyn``, BraSyn's.

    A full :func:`training.scoring.score` takes about a minute per BraTS volume on 2 cores, mostly
    SSIM maps of the whole volume, and 28 configurations x 5 cases of it take hours. So whole-volume and
    tumour-region SSIM are left out (NaN) and the brain scores are computed as always, on the brain's box.
    """
    scores = dict.fromkeys(METRICS, math.nan)
    scores["psnr"] = psnr(pred, truth)
    scores |= brain_scores(pred, truth, mask)
    if brasyn and min(pred.shape) >= WINDOW_SIZE:
        scores |= brasyn_scores(pred, raw_truth, seg)
    return scores


def score_case(model: LoadedModel, case: CaseFiles, dataset: str, batch_size: int) -> list[dict[str, object]]:
    """The model's rows for every configuration ``case`` has the modalities of."""
    manifest = model.manifest
    loaded = load_case(case, list(case.files), load_seg=True)
    normalized = ModelSpaceImages(loaded.images, manifest.normalization)
    rows: list[dict[str, object]] = []
    for sources in SOURCE_SETS:
        targets = [t for t in Modality if t not in sources and t in loaded.images]
        if not targets or any(m not in loaded.images for m in sources):
            continue
        given = {m: loaded.images[m] for m in sources}
        mask = loaded.brain_mask(sources)  # as the service does: the sources' nonzero voxels, or the mask sent
        started = time.perf_counter()
        y, _ = synthesize(model.forward, given, mask, manifest, batch_size=batch_size)
        seconds = time.perf_counter() - started
        model_space = normalized.under(mask, loaded.images)
        for target in targets:
            keys = {"dataset": dataset, "case": case.case_id, "sources": sources_key(sources), "target": target.value}
            truth, raw = model_space[target], brasyn_truth(loaded.images[target], loaded.brain)
            pred = y[manifest.dst.index(target)]
            scores = configuration_scores(pred, truth, mask, loaded.seg, raw, brasyn=True)
            rows.append({"model": manifest.name, **keys, **scores, "seconds": seconds})
        logger.info("%s on %s from %s: %.1f s", manifest.name, case.case_id, sources_key(sources), seconds)
    return rows


def read_scored_rows(path: Path) -> list[dict[str, object]]:
    """The rows of ``per_configuration.csv`` with the metrics as floats."""
    return [{**row, **{m: as_float(row[m]) for m in (*METRICS, "seconds")}} for row in read_rows(path)]


def dedicated_scores(store: Path) -> dict[tuple[str, str], list[tuple[str, TargetMetrics]]]:
    """(sources, target) → the recorded validation scores of each dedicated model in ``store`` serving it."""
    found: dict[tuple[str, str], list[tuple[str, TargetMetrics]]] = {}
    for folder in sorted(p for p in Path(store).iterdir() if (p / "manifest.json").is_file()):
        manifest = ModelManifest.load(folder)
        record = EvaluationRecord.load_if_present(folder)
        if manifest.any_to_any or record is None:
            continue
        for target, metrics in record.targets.items():
            key = (sources_key([m for m in Modality if m in manifest.src]), target.value)
            found.setdefault(key, []).append((manifest.name, metrics))
    return found


def brain_cell(s: Summary | None) -> str:
    """Mean ± std brain PSNR / SSIM of one summary, or "–"."""
    if s is None:
        return "–"
    psnr, ssim = pm(s.mean["psnr_brain"], s.std["psnr_brain"], 2), pm(s.mean["ssim_brain"], s.std["ssim_brain"], 3)
    return f"{psnr} / {ssim}"


def brasyn_cell(s: Summary | None) -> str:
    """BraSyn's SSIM in the tumour / the rest of one summary, or "–"."""
    if s is None or math.isnan(s.mean["ssim_brasyn_rest"]):
        return "–"
    tumour = "–" if math.isnan(s.mean["ssim_brasyn_tumour"]) else f"{s.mean['ssim_brasyn_tumour']:.3f}"
    return f"{tumour} / {s.mean['ssim_brasyn_rest']:.3f}"


def markdown_table(
    summaries: Sequence[Summary],
    model: str,
    dedicated: dict[tuple[str, str], list[tuple[str, TargetMetrics]]],
    dataset: str,
    columns: Sequence[Column] = (),
) -> list[str]:
    """The 28 configurations of one dataset: the model, ``columns`` and (main dataset) dedicated models."""
    by = {(s.model, s.sources, s.target): s for s in summaries if s.dataset == dataset}
    lines = [
        f"| sources | target | {model}: brain PSNR / SSIM | BraSyn SSIM tumour / rest "
        + "".join(f"| {header} " for header, _ in columns)
        + "| dedicated models (recorded brain PSNR / SSIM) |",
        "| --- | --- | --- | --- " + "| --- " * len(columns) + "| --- |",
    ]
    for sources, target in CONFIGURATIONS:
        key = (sources_key(sources), target.value)
        ours = by.get((model, *key))
        recorded = "; ".join(
            f"{name}: {m.psnr_brain:.2f} / {m.ssim_brain:.3f}"
            for name, m in dedicated.get(key, [])
            if math.isfinite(m.psnr_brain) and math.isfinite(m.ssim_brain)
        )
        extra = "".join(f"| {cell(dataset, *key)} " for _, cell in columns)
        lines.append(f"| {key[0]} | {key[1]} | {brain_cell(ours)} | {brasyn_cell(ours)} {extra}| {recorded or '–'} |")
    return lines


def configurations_report(
    rows: Sequence[dict[str, object]],
    name: str,
    datasets: Sequence[str],
    store: Path,
    command: str,
    columns: Sequence[Column] = (),
    about_columns: str = "",
) -> str:
    """``configurations.md``: the model's table per dataset (the first one with the dedicated models' scores)."""
    summaries = summarize([r for r in rows if r["model"] == name])
    dedicated = dedicated_scores(store)
    lines = [f"# {name} on every single-target configuration", "", f"Command: `{command}`", ""]
    lines += [
        "Mean ± std over each dataset's cases. Brain: our in-brain convention; BraSyn: the challenge's "
        f"whole-volume scoring (see report.md).{about_columns} Dedicated models: the validation scores "
        "their evaluation.json records, on the same validation subjects.",
    ]
    for dataset in datasets:
        n = len({r["case"] for r in rows if r["dataset"] == dataset})
        lines += ["", f"## {dataset} ({n} cases)", ""]
        lines += markdown_table(summaries, name, dedicated if dataset == datasets[0] else {}, dataset, columns)
    return "\n".join(lines) + "\n"


def evaluate_configurations(
    model: LoadedModel,
    data: Path,
    cases: Sequence[str],
    also: Sequence[Path],
    out: Path,
    *,
    store: Path,
    batch_size: int = 4,
    write_evaluation_file: bool = False,
    command: str = "",
) -> list[Summary]:
    """Score ``model`` on every configuration of ``cases`` (in ``data``) and of ``also``."""
    name = model.manifest.name
    available = {case.case_id: case for case in find_cases(data)}
    main_dataset = Path(data).resolve().name
    todo = [(main_dataset, available[c]) for c in cases]
    for folder in also:
        todo += [(Path(folder).resolve().name, case) for case in unseen_cases(model.manifest, find_cases(folder))]
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "per_configuration.csv"
    rows = read_scored_rows(csv_path)
    done = {(row["model"], row["dataset"], row["case"]) for row in rows}
    for dataset, case in todo:
        if (name, dataset, case.case_id) in done:
            continue
        rows = [r for r in rows if (r["model"], r["dataset"], r["case"]) != (name, dataset, case.case_id)]
        rows = [*rows, *score_case(model, case, dataset, batch_size)]
        write_rows(csv_path, rows, KEY_FIELDS)  # after every case: an interrupted run loses one case at most
    wanted = {(dataset, case.case_id) for dataset, case in todo}
    rows = [r for r in rows if r["model"] == name and (r["dataset"], r["case"]) in wanted]
    summaries = summarize(rows)
    datasets = [main_dataset, *dict.fromkeys(d for d, _ in todo if d != main_dataset)]
    (out / "configurations.md").write_text(configurations_report(rows, name, datasets, Path(store), command))
    if write_evaluation_file:
        own = [s for s in summaries if s.model == name]
        folders = {main_dataset: str(data), **{Path(folder).resolve().name: str(folder) for folder in also}}
        have = {(r["dataset"], r["case"]) for r in rows if r["model"] == name}
        scored: dict[str, list[str]] = {}
        for dataset, case in todo:
            if (dataset, case.case_id) in have:
                scored.setdefault(dataset, []).append(case.case_id)
        save_evaluation(Path(store) / name, own, main_dataset, folders, scored, command)
    return summaries

