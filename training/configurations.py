"""An any-to-any model scored on every single-target configuration, beside the lookup-table baseline.

``python -m training.evaluate --all-configurations`` runs this for each any-to-any model it
evaluates. For each case and each of the 14 source sets (one, two or three of the four
modalities) the model synthesizes every missing modality once, through the service's volume
pipeline; each (sources, target) pair is then one of the 28 single-target configurations,
scored with the columns the table shows (:func:`configuration_scores`). The per-intensity lookup
table (:mod:`training.lookup_table`), learnt on the model's own training cases, is scored on the
same voxels under the model name ``lookup_table``: a configuration where the network does not beat
it has learnt nothing beyond a global intensity mapping.

Reports: ``per_configuration.csv`` (one row per model, dataset, case, sources, target; a case
with the model's rows is reused, any other is scored again, the table's rows with it),
``configurations.md`` (mean ± std per configuration and dataset, with
the scores the store records for dedicated models of the same configuration), and, with
``--write-evaluation``, the model's ``evaluation.json`` ``configurations`` that routing reads.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synnet.dataset_layout import CaseFiles
from synnet.evaluation import ConfigurationScore, EvaluationRecord, measured_bf16_cost
from synnet.inference import synthesize
from synnet.manifest import ModelManifest
from synnet.metrics import WINDOW_SIZE, brain_scores, brasyn_scores, psnr
from synnet.modalities import Modality
from synnet.normalization import brain_mask
from synnet.routing import all_configurations
from synnet.scores import TargetMetrics
from synnet.store import LoadedModel
from training.data.brats import find_cases, load_case
from training.lookup_table import Configuration, LookupTable, LookupTableFit, ModelSpaceImages
from training.scoring import (
    BASE_METRICS,
    METRICS,
    Summary,
    as_float,
    pm,
    read_rows,
    summarize,
    write_rows,
)

logger = logging.getLogger(__name__)

LOOKUP_TABLE = "lookup_table"
# the single-target ones of routing's 50, in its canonical order; and the source sets they use
CONFIGURATIONS: list[Configuration] = [(s, d[0]) for s, d in all_configurations() if len(d) == 1]
SOURCE_SETS: list[tuple[Modality, ...]] = list(dict.fromkeys(s for s, _ in CONFIGURATIONS))
KEY_FIELDS = ("model", "dataset", "case", "sources", "target")


def sources_key(sources: Sequence[Modality]) -> str:
    return ",".join(m.value for m in sources)


def fit_lookup_tables(model: LoadedModel, folders: Sequence[Path]) -> dict[Configuration, LookupTable]:
    """Tables learnt on the model's training cases found in ``folders`` (partial cases count where they can)."""
    train = set(model.manifest.training_data.train_cases)
    fit = LookupTableFit(CONFIGURATIONS, model.manifest.normalization)
    for folder in folders:
        for case in find_cases(folder):
            if case.case_id in train:
                fit.add_case(load_case(case, list(case.files), load_seg=False).images)
    return fit.tables()


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
    SSIM maps of the whole volume; 28 configurations x 2 predictors x 5 cases of it do not fit a
    session. So whole-volume and tumour-region SSIM are left out (NaN) and the brain scores are
    computed as always, on the brain's box; the lookup table is scored inside the brain only.
    """
    scores = dict.fromkeys(METRICS, math.nan)
    scores["psnr"] = psnr(pred, truth)
    scores |= brain_scores(pred, truth, mask)
    if brasyn and min(pred.shape) >= WINDOW_SIZE:
        scores |= brasyn_scores(pred, raw_truth, seg)
    return scores


def score_case(
    model: LoadedModel,
    case: CaseFiles,
    dataset: str,
    tables: dict[Configuration, LookupTable],
    batch_size: int,
) -> list[dict[str, object]]:
    """Rows for every configuration ``case`` has the modalities of: the model's and the table's."""
    manifest = model.manifest
    loaded = load_case(case, list(case.files), load_seg=True)
    normalized = ModelSpaceImages(loaded.images, manifest.normalization)
    rows: list[dict[str, object]] = []
    for sources in SOURCE_SETS:
        targets = [t for t in Modality if t not in sources and t in loaded.images]
        if not targets or any(m not in loaded.images for m in sources):
            continue
        given = {m: loaded.images[m] for m in sources}
        mask = brain_mask(list(given.values()))  # as the service does: the sources' nonzero voxels
        started = time.perf_counter()
        y, _ = synthesize(model.forward, given, mask, manifest, batch_size=batch_size)
        seconds = time.perf_counter() - started
        model_space = normalized.under(mask, loaded.images)
        for target in targets:
            keys = {"dataset": dataset, "case": case.case_id, "sources": sources_key(sources), "target": target.value}
            truth, raw = model_space[target], loaded.images[target]
            pred = y[manifest.dst.index(target)]
            scores = configuration_scores(pred, truth, mask, loaded.seg, raw, brasyn=True)
            rows.append({"model": manifest.name, **keys, **scores, "seconds": seconds})
            table = tables.get((sources, target))
            if table is not None:
                scores = configuration_scores(table.predict(model_space, mask), truth, mask, loaded.seg, raw)
                rows.append({"model": LOOKUP_TABLE, **keys, **scores, "seconds": 0.0})
        logger.info("%s on %s from %s: %.1f s", manifest.name, case.case_id, sources_key(sources), seconds)
    return rows


def read_scored_rows(path: Path) -> list[dict[str, object]]:
    """The rows of ``per_configuration.csv`` with the metrics as floats."""
    return [{**row, **{m: as_float(row[m]) for m in (*METRICS, "seconds")}} for row in read_rows(path)]


def dedicated_scores(store: Path) -> dict[tuple[str, str], list[tuple[str, TargetMetrics]]]:
    """(sources, target) → the recorded held-out scores of each dedicated model in ``store`` serving it."""
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


def markdown_table(
    summaries: Sequence[Summary],
    model: str,
    dedicated: dict[tuple[str, str], list[tuple[str, TargetMetrics]]],
    dataset: str,
) -> list[str]:
    """The 28 configurations of one dataset: the model, the lookup table and (main dataset) dedicated models."""
    by = {(s.model, s.sources, s.target): s for s in summaries if s.dataset == dataset}

    def brain(s: Summary | None) -> str:
        if s is None:
            return "–"
        psnr, ssim = pm(s.mean["psnr_brain"], s.std["psnr_brain"], 2), pm(s.mean["ssim_brain"], s.std["ssim_brain"], 3)
        return f"{psnr} / {ssim}"

    def brasyn(s: Summary | None) -> str:
        if s is None or math.isnan(s.mean["ssim_brasyn_rest"]):
            return "–"
        tumour = "–" if math.isnan(s.mean["ssim_brasyn_tumour"]) else f"{s.mean['ssim_brasyn_tumour']:.3f}"
        return f"{tumour} / {s.mean['ssim_brasyn_rest']:.3f}"

    lines = [
        f"| sources | target | {model}: brain PSNR / SSIM | BraSyn SSIM tumour / rest "
        "| lookup table: brain PSNR / SSIM | beats the table (SSIM) | dedicated models (recorded brain PSNR / SSIM) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for sources, target in CONFIGURATIONS:
        key = (sources_key(sources), target.value)
        ours, table = by.get((model, *key)), by.get((LOOKUP_TABLE, *key))
        wins = "–"
        if ours is not None and table is not None:
            wins = "yes" if ours.mean["ssim_brain"] > table.mean["ssim_brain"] else "no"
        recorded = "; ".join(
            f"{name}: {m.psnr_brain:.2f} / {m.ssim_brain:.3f}"
            for name, m in dedicated.get(key, [])
            if math.isfinite(m.psnr_brain) and math.isfinite(m.ssim_brain)
        )
        lines.append(
            f"| {key[0]} | {key[1]} | {brain(ours)} | {brasyn(ours)} | {brain(table)} | {wins} "
            f"| {recorded or '–'} |"
        )
    return lines


def write_configuration_scores(folder: Path, summaries: Sequence[Summary], data: str, cases: list[str],
                               command: str) -> None:  # fmt: skip
    """The main dataset's means per configuration into the model's ``evaluation.json``, which routing reads."""

    def rounded(value: float) -> float | None:
        return round(value, 4) if math.isfinite(value) else None

    scores = [
        ConfigurationScore(
            src=s.sources.split(","),
            target=s.target,
            metrics=TargetMetrics(
                **{name: rounded(s.mean[name]) for name in BASE_METRICS},
                **{f"{name}_std": rounded(s.std[name]) for name in BASE_METRICS},
            ),
        )
        for s in summaries
    ]
    data_record = {"data": data, "cases": cases, "command": command}
    EvaluationRecord(configurations=scores, data=data_record, bf16=measured_bf16_cost(folder)).save(folder)


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
    """Score ``model`` and the lookup table on every configuration of ``cases`` (in ``data``) and of ``also``."""
    name = model.manifest.name
    available = {case.case_id: case for case in find_cases(data)}
    main_dataset = Path(data).resolve().name
    todo = [(main_dataset, available[c]) for c in cases]
    todo += [(Path(folder).resolve().name, case) for folder in also for case in find_cases(folder)]
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "per_configuration.csv"
    rows = read_scored_rows(csv_path)
    done = {(row["model"], row["dataset"], row["case"]) for row in rows}
    tables: dict[Configuration, LookupTable] | None = None
    for dataset, case in todo:
        if (name, dataset, case.case_id) in done:
            continue
        if tables is None:
            tables = fit_lookup_tables(model, training_folders(model.manifest, Path(data)))
            logger.info("lookup tables: %d configurations", len(tables))
        rows = [r for r in rows if (r["dataset"], r["case"]) != (dataset, case.case_id)]  # the table's too: no twins
        rows = [*rows, *score_case(model, case, dataset, tables, batch_size)]
        write_rows(csv_path, rows, KEY_FIELDS)  # after every case: an interrupted run loses one case at most
    wanted = {(dataset, case.case_id) for dataset, case in todo}
    rows = [r for r in rows if r["model"] in (name, LOOKUP_TABLE) and (r["dataset"], r["case"]) in wanted]
    summaries = summarize(rows)
    dedicated = dedicated_scores(store)
    datasets = [main_dataset, *dict.fromkeys(d for d, _ in todo if d != main_dataset)]
    lines = [f"# {name} on every single-target configuration", "", f"Command: `{command}`", ""]
    lines += [
        "Mean ± std over each dataset's cases. Brain: our in-brain convention; BraSyn: the challenge's "
        "whole-volume scoring (see report.md). Lookup table: the mean target per joint source intensity, "
        "learnt on the model's training cases (training.lookup_table). Dedicated models: the held-out scores "
        "their evaluation.json records, on the same test cases.",
    ]
    for dataset in datasets:
        n = len({r["case"] for r in rows if r["dataset"] == dataset})
        lines += ["", f"## {dataset} ({n} cases)", ""]
        lines += markdown_table(summaries, name, dedicated if dataset == main_dataset else {}, dataset)
    (out / "configurations.md").write_text("\n".join(lines) + "\n")
    if write_evaluation_file:
        own = [s for s in summaries if s.model == name and s.dataset == main_dataset]
        write_configuration_scores(Path(store) / name, own, str(data), list(cases), command)
    return summaries

