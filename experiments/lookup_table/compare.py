"""An any-to-any model against the lookup table on every single-target configuration.

The model's rows come from the product (:func:`training.configurations.evaluate_configurations`, which reuses the
rows already in ``per_configuration.csv``); the table, learnt on the model's own training cases, is scored on the
same cases and voxels under the model name ``lookup_table``, inside the brain only. A configuration where the
network does not beat it has learnt nothing beyond a global intensity mapping. ``configurations.md`` is rewritten
with the table's scores and whether the model beats it, beside the model's own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from experiments.lookup_table.table import LookupTable, LookupTableFit
from synnet.dataset_layout import CaseFiles
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.store import LoadedModel
from training.configurations import (
    CONFIGURATIONS,
    KEY_FIELDS,
    SOURCE_SETS,
    Column,
    Configuration,
    brain_cell,
    configuration_scores,
    configurations_report,
    evaluate_configurations,
    read_scored_rows,
    sources_key,
    training_folders,
)
from training.data.brats import find_cases, load_case
from training.model_space import ModelSpaceImages
from training.scoring import Summary, brasyn_truth, summarize, write_rows

logger = logging.getLogger(__name__)

LOOKUP_TABLE = "lookup_table"
ABOUT_THE_TABLE = (
    " Lookup table: the mean target per joint source intensity, learnt on the model's training cases "
    "(experiments.lookup_table)."
)


def fit_lookup_tables(manifest: ModelManifest, folders: Sequence[Path]) -> dict[Configuration, LookupTable]:
    """Tables learnt on the model's training cases found in ``folders`` (partial cases count where they can)."""
    train = set(manifest.training_data.train_cases)
    fit = LookupTableFit(CONFIGURATIONS, manifest.normalization)
    for folder in folders:
        for case in find_cases(folder):
            if case.case_id in train:
                fit.add_case(load_case(case, list(case.files), load_seg=False).images)
    return fit.tables()


def table_rows(
    manifest: ModelManifest, case: CaseFiles, dataset: str, tables: dict[Configuration, LookupTable]
) -> list[dict[str, object]]:
    """The table's rows for every configuration ``case`` has the modalities of, on the model's normalization."""
    loaded = load_case(case, list(case.files), load_seg=True)
    normalized = ModelSpaceImages(loaded.images, manifest.normalization)
    rows: list[dict[str, object]] = []
    for sources in SOURCE_SETS:
        targets = [t for t in Modality if t not in sources and t in loaded.images and (sources, t) in tables]
        if not targets or any(m not in loaded.images for m in sources):
            continue
        mask = loaded.brain_mask(sources)  # as the model's rows: the sources' nonzero voxels, or the case's mask
        model_space = normalized.under(mask, loaded.images)
        for target in targets:
            prediction = tables[sources, target].predict(model_space, mask)
            truth = model_space[target]
            raw = brasyn_truth(loaded.images[target], loaded.brain)
            scores = configuration_scores(prediction, truth, mask, loaded.seg, raw)
            keys = {"dataset": dataset, "case": case.case_id, "sources": sources_key(sources), "target": target.value}
            rows.append({"model": LOOKUP_TABLE, **keys, **scores, "seconds": 0.0})
    return rows


def table_columns(summaries: Sequence[Summary], model: str) -> list[Column]:
    """The table's brain scores and whether ``model`` beats it on brain SSIM, as columns of the model's table."""
    by = {(s.model, s.dataset, s.sources, s.target): s for s in summaries}

    def scores(dataset: str, sources: str, target: str) -> str:
        return brain_cell(by.get((LOOKUP_TABLE, dataset, sources, target)))

    def beats(dataset: str, sources: str, target: str) -> str:
        ours, table = by.get((model, dataset, sources, target)), by.get((LOOKUP_TABLE, dataset, sources, target))
        if ours is None or table is None:
            return "–"
        return "yes" if ours.mean["ssim_brain"] > table.mean["ssim_brain"] else "no"

    return [("lookup table: brain PSNR / SSIM", scores), ("beats the table (SSIM)", beats)]


def compare(
    model: LoadedModel, out: Path, data: Path, cases: Sequence[str], also: Sequence[Path], store: Path, command: str
) -> None:
    """The model's and the table's rows for every configuration of ``cases`` and ``also`` into ``out``."""
    manifest = model.manifest
    csv_path = out / "per_configuration.csv"
    before = {(r["dataset"], r["case"]) for r in read_scored_rows(csv_path) if r["model"] == manifest.name}
    evaluate_configurations(model, data, cases, also, out, store=store, command=command)
    rows = read_scored_rows(csv_path)
    wanted = {(r["dataset"], r["case"]) for r in rows if r["model"] == manifest.name}
    # a case the model was scored on now is scored for the table again too (its training cases may have changed)
    rows = [r for r in rows if r["model"] != LOOKUP_TABLE or (r["dataset"], r["case"]) in before]
    scored = {(r["dataset"], r["case"]) for r in rows if r["model"] == LOOKUP_TABLE}
    found = {(Path(f).resolve().name, case.case_id): case for f in (data, *also) for case in find_cases(f)}
    tables: dict[Configuration, LookupTable] | None = None
    for dataset, case_id in sorted(wanted - scored):
        if tables is None:
            tables = fit_lookup_tables(manifest, training_folders(manifest, Path(data)))
            logger.info("lookup tables: %d configurations", len(tables))
        rows = [*rows, *table_rows(manifest, found[dataset, case_id], dataset, tables)]
        write_rows(csv_path, rows, KEY_FIELDS)  # after every case: an interrupted run loses one case at most
    rows = [r for r in rows if (r["dataset"], r["case"]) in wanted]
    main_dataset = Path(data).resolve().name
    datasets = [main_dataset, *sorted({str(r["dataset"]) for r in rows} - {main_dataset})]
    columns = table_columns(summarize(rows), manifest.name)
    report = configurations_report(rows, manifest.name, datasets, store, command, columns, ABOUT_THE_TABLE)
    (out / "configurations.md").write_text(report)
