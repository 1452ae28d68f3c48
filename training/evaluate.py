"""Evaluate exported models on the held-out cases of a BraTS folder, volume by volume.

``python -m training.evaluate --data ../shared/data/brats18 --models synnet_t1_to_t2,...``

Each model synthesizes each of its test cases (the ``test_cases`` its manifest records, unless
``--cases`` names others) through the volume pipeline the service also runs
(:func:`synnet.inference.synthesize`: per-volume normalization, empty slices skipped, brain
bounding box), so these numbers are what the service reports for the same upload. Scores, per
case and target, in model space:

* PSNR and SSIM over the whole volume, and inside the brain with our own, strict convention
  (:func:`synnet.metrics.evaluate`: each image clipped to its own percentiles inside the brain);
* when the case has a ``seg`` file, PSNR and SSIM inside the tumour regions of BraTS: whole tumour
  (labels 1, 2, 4), tumour core (1, 4) and enhancing tumour (4), on the brain-scaled images;
* the BraSyn challenge's own scores (:func:`synnet.metrics.brasyn_scores`: whole-volume
  percentiles, SSIM over the tumour and over the rest, background included), beside ours.

``--also DIR`` scores every case of further folders (e.g. the BraTS 2023 case, prepared by another
pipeline) and reports each folder as its own rows: how the models hold up on data from elsewhere.

The report folder gets ``per_case.csv``, ``summary.csv`` (mean ± std over cases), ``report.md``
and one figure per model (sources, truth, synthesized and error for a few slices). Rows already in
``per_case.csv`` are reused, so an interrupted evaluation continues where it stopped.
``--write-evaluation`` stores the means in ``evaluation.json`` beside each model
(:class:`synnet.evaluation.EvaluationRecord`), never in the manifest its digest seals.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synnet.dataset_layout import CaseFiles
from synnet.errors import SynnetError
from synnet.evaluation import EvaluationRecord, measured_bf16_cost
from synnet.inference import synthesize
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.normalization import brain_mask, normalize_target
from synnet.scores import TargetMetrics
from synnet.store import LoadedModel, ModelStore
from training.configurations import evaluate_configurations
from training.data.brats import LoadedCase, find_cases, load_case
from training.evaluation_figure import figure_columns, held_out_figure
from training.scoring import (
    BASE_METRICS,
    BRASYN_METRICS,
    METRICS,
    REGIONS,
    Summary,
    as_float,
    cell,
    pm,
    read_rows,
    score,
    summarize,
    write_rows,
)

logger = logging.getLogger(__name__)

KEY_FIELDS = ("model", "dataset", "case", "target")


class EvaluationError(SynnetError):
    code = "evaluation_failed"


@dataclass
class CasePrediction:
    """One model's synthesis of one case, with what scoring and the figure both need."""

    case_id: str
    dataset: str
    loaded: LoadedCase
    mask: np.ndarray
    y: np.ndarray
    seconds: float

    def model_space(self, modality: Modality, manifest: ModelManifest) -> np.ndarray:
        """A real image of the case in model space, normalized as the service normalizes what it is sent."""
        return normalize_target(self.loaded.images[modality], self.mask, manifest.normalization)[0]


def predict_case(model: LoadedModel, case: CaseFiles, batch_size: int) -> CasePrediction:
    """Load ``case`` and synthesize every target of ``model`` the way the service does."""
    manifest = model.manifest
    needed = (*manifest.src, *manifest.dst)
    missing = case.lacks(needed)
    if missing:
        listed = ", ".join(m.value for m in missing)
        raise EvaluationError(f"case {case.case_id} has no {listed}", code="missing_modality")
    loaded = load_case(case, needed, load_seg=True)
    sources = {m: loaded.images[m] for m in manifest.src}
    mask = brain_mask(list(sources.values()))  # as the service does: the sources' nonzero voxels
    started = time.perf_counter()
    y, _ = synthesize(model.forward, sources, mask, manifest, batch_size=batch_size)
    seconds = time.perf_counter() - started
    return CasePrediction(case.case_id, dataset_name(case.folder.parent), loaded, mask, y, seconds)


def dataset_name(folder: Path) -> str:
    """How a report names the dataset a case folder sits in: its folder's name (``data/.`` too)."""
    return folder.resolve().name


def score_prediction(manifest: ModelManifest, prediction: CasePrediction) -> list[dict[str, object]]:
    """One row per target of the model on the predicted case."""
    rows = []
    for channel, target in enumerate(manifest.dst):
        truth = prediction.model_space(target, manifest)
        raw_truth = prediction.loaded.images[target]
        scores = score(prediction.y[channel], truth, prediction.mask, prediction.loaded.seg, raw_truth)
        keys = {"model": manifest.name, "dataset": prediction.dataset, "case": prediction.case_id}
        keys["target"] = target.value
        rows.append({**keys, **scores, "seconds": prediction.seconds})
    return rows


def markdown_report(summaries: Sequence[Summary], data: str, cases: dict[str, list[str]], command: str) -> str:
    lines = [
        "# Evaluation on held-out cases",
        "",
        f"Data: `{data}`. Command: `{command}`",
        "",
        "Mean ± std over the cases of each dataset. *Whole*: the whole volume in model space; *brain*: our own, "
        "strict convention, inside the brain mask only, each image clipped to its 0.5/99.5 percentiles there and "
        "scaled to [0, 1]; *BraSyn*: the challenge's scoring (each volume clipped to its whole-volume percentiles, "
        "background included; SSIM over the tumour and over the rest, background included), higher by "
        "construction; tumour regions (WT whole tumour, TC tumour core, ET enhancing) on the brain-scaled images.",
        "",
        "| model | dataset | target | cases | PSNR whole | SSIM whole | PSNR brain | SSIM brain "
        "| PSNR BraSyn | SSIM BraSyn tumour | SSIM BraSyn rest |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        cells = [pm(s.mean[m], s.std[m], 2 if m.startswith("psnr") else 4) for m in (*BASE_METRICS, *BRASYN_METRICS)]
        lines.append(f"| {s.model} | {s.dataset} | {s.target} | {s.n_cases} | " + " | ".join(cells) + " |")
    lines += ["", "| model | dataset | target | PSNR WT | SSIM WT | PSNR TC | SSIM TC | PSNR ET | SSIM ET |"]
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in summaries:
        cells = [
            pm(s.mean[f"{metric}_{region}"], s.std[f"{metric}_{region}"], 2 if metric == "psnr" else 4)
            for region in REGIONS
            for metric in ("psnr", "ssim")
        ]
        lines.append(f"| {s.model} | {s.dataset} | {s.target} | " + " | ".join(cells) + " |")
    lines += ["", "Cases per model:", ""]
    lines += [f"- {model}: {', '.join(ids)}" for model, ids in cases.items()]
    return "\n".join(lines) + "\n"


def write_evaluation(folder: Path, summaries: Sequence[Summary], data: str, cases: list[str], command: str) -> None:
    """The means and spreads of ``summaries`` as ``evaluation.json`` beside the model."""
    metrics = {}
    for s in summaries:
        values = {name: _rounded(s.mean[name]) for name in BASE_METRICS}
        values |= {f"{name}_std": _rounded(s.std[name]) for name in BASE_METRICS}
        metrics[Modality(s.target)] = TargetMetrics(**values)
    data_record = {"data": data, "cases": cases, "command": command}
    EvaluationRecord(targets=metrics, data=data_record, bf16=measured_bf16_cost(folder)).save(folder)


def _rounded(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def run_evaluation(
    data: Path,
    store: Path,
    names: Sequence[str] | None,
    out: Path,
    *,
    cases: Sequence[str] | None = None,
    device: str = "cpu",
    batch_size: int = 4,
    figures: bool = True,
    write_evaluation_files: bool = False,
    command: str = "",
    also: Sequence[Path] = (),
    all_configurations: bool = False,
) -> list[Summary]:
    """Evaluate, write the report folder, and return the summaries (see the module docstring).

    ``also``: further BraTS folders whose every case (with the model's modalities) is scored and
    summarized as its own dataset; never written to ``evaluation.json``.
    ``all_configurations``: score each any-to-any model on every single-target configuration instead
    (:mod:`training.configurations`, report in ``out/<model>/``); its summaries are not returned.
    """
    loaded = ModelStore.load(store, device, names=list(names) if names else None)
    if loaded.unavailable:
        reasons = "; ".join(f"{u.name}: {u.reason}" for u in loaded.unavailable)
        raise EvaluationError(f"models in {store} failed to load: {reasons}", code="model_unavailable")
    chosen = list(names) if names else sorted(loaded.models)
    unknown = [name for name in chosen if name not in loaded.models]
    if unknown:
        raise EvaluationError(
            f"no model {', '.join(unknown)} in {store} (have: {', '.join(sorted(loaded.models))})",
            code="unknown_model",
        )
    available = {case.case_id: case for case in find_cases(data)}
    elsewhere = [case for folder in also for case in find_cases(folder)]
    main_dataset = dataset_name(Path(data))
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "per_case.csv"
    rows = [{"dataset": main_dataset, **row} for row in read_rows(csv_path)]  # files from before datasets
    done = {(row["model"], row["case"]) for row in rows}
    cases_of: dict[str, list[str]] = {}
    for name in chosen:
        model = loaded.models[name]
        ids = list(cases) if cases else list(model.manifest.training_data.test_cases)
        if not ids:
            raise EvaluationError(f"model {name} records no test cases; name them with --cases", code="no_test_cases")
        absent = [case_id for case_id in ids if case_id not in available]
        if absent:
            raise EvaluationError(f"cases {', '.join(absent)} are not in {data}", code="missing_case")
        leaked = sorted(set(ids) & set(model.manifest.training_data.train_cases))
        if leaked:
            logger.warning("%s was trained on %s: those scores are not held-out scores", name, ", ".join(leaked))
        if all_configurations and model.manifest.any_to_any:
            evaluate_configurations(
                model, Path(data), ids, also, out / name, store=Path(store), batch_size=batch_size,
                write_evaluation_file=write_evaluation_files, command=command,
            )  # fmt: skip
            continue
        needed = (*model.manifest.src, *model.manifest.dst)
        extra = {case.case_id: case for case in elsewhere if not case.lacks(needed)}
        cases_of[name] = [*ids, *extra]
        figure_path = out / "figures" / f"{name}.png"
        figure_path.parent.mkdir(exist_ok=True)
        for case_id in cases_of[name]:
            wants_figure = figures and case_id == ids[0] and not figure_path.exists()
            if (name, case_id) in done and not wants_figure:
                continue
            case = available[case_id] if case_id in ids else extra[case_id]
            prediction = predict_case(model, case, batch_size)  # once, for rows and figure
            if wants_figure:
                columns = figure_columns(
                    {m: prediction.model_space(m, model.manifest) for m in (*model.manifest.src, *model.manifest.dst)},
                    model.manifest, prediction.y,
                )  # fmt: skip
                title = f"{model.manifest.name} on {prediction.case_id} (held out)"
                held_out_figure(columns, prediction.mask, prediction.loaded.seg, title, figure_path)
            if (name, case_id) in done:
                continue
            new_rows = score_prediction(model.manifest, prediction)
            rows = [*rows, *new_rows]
            write_rows(csv_path, rows, KEY_FIELDS)  # after every case: an interrupted run loses one case at most
            for row in new_rows:
                logger.info(
                    "%s on %s → %s: PSNR %.2f dB, SSIM %.4f (brain %.2f dB / %.4f), %.1f s",
                    name, case_id, row["target"], row["psnr"], row["ssim"],
                    row["psnr_brain"], row["ssim_brain"], row["seconds"],
                )  # fmt: skip
    rows = [row for row in rows if row["model"] in cases_of and row["case"] in cases_of[str(row["model"])]]
    rows = [{**row, **{m: as_float(row.get(m)) for m in (*METRICS, "seconds")}} for row in rows]
    summaries = [s for s in summarize(rows) if s.model in cases_of]
    order = {name: i for i, name in enumerate(chosen)}
    summaries.sort(key=lambda s: (order[s.model], s.dataset != main_dataset, s.dataset, s.target))
    if not cases_of:  # every model was scored per configuration: its report is out/<model>/
        return summaries
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["model", "dataset", "target", "n_cases"]
        writer.writerow([*header, *(f"{m}_{k}" for m in METRICS for k in ("mean", "std"))])
        for s in summaries:
            cells = [cell(v) for m in METRICS for v in (s.mean[m], s.std[m])]
            writer.writerow([s.model, s.dataset, s.target, s.n_cases, *cells])
    (out / "report.md").write_text(markdown_report(summaries, str(data), cases_of, command))
    if write_evaluation_files:
        for name in cases_of:
            own = [s for s in summaries if s.model == name and s.dataset == main_dataset]
            held_out = [case_id for case_id in cases_of[name] if case_id in available]
            write_evaluation(Path(store) / name, own, str(data), held_out, command)
    return summaries


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Evaluate exported models on the held-out cases of a BraTS folder, volume by volume, "
        "and write per-case and mean ± std PSNR/SSIM (whole, brain, tumour regions), a markdown "
        "report and figures.",
    )
    parser.add_argument("--data", type=Path, required=True, help="BraTS folder holding the test cases")
    parser.add_argument("--models", help="comma-separated model names (default: every model in --store)")
    parser.add_argument("--store", type=Path, default=Path("model_store"), help="model store (default: %(default)s)")
    parser.add_argument("--cases", help="comma-separated case ids (default: each manifest's test cases)")
    parser.add_argument(
        "--also", type=Path, action="append", default=[], metavar="DIR",
        help="another BraTS folder whose every case is scored as its own dataset rows (repeatable), "
        "e.g. ../shared/data/brats23",
    )
    parser.add_argument("--out", type=Path, default=Path("reports/evaluation"), help="report folder")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=4, help="slices per forward pass (default: %(default)s)")
    parser.add_argument("--no-figures", dest="figures", action="store_false", help="skip the PNG figures")
    parser.add_argument(
        "--write-evaluation", action="store_true", help="store the means in evaluation.json beside each model"
    )
    parser.add_argument(
        "--all-configurations", action="store_true",
        help="score each any-to-any model on all 28 single-target configurations, beside a per-intensity "
        "lookup table learnt on its training cases (report: OUT/<model>/configurations.md)",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
    cases = [c.strip() for c in args.cases.split(",") if c.strip()] if args.cases else None
    command = "python -m training.evaluate " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        summaries = run_evaluation(
            args.data, args.store, names, args.out,
            cases=cases, device=args.device, batch_size=args.batch_size,
            figures=args.figures, write_evaluation_files=args.write_evaluation, command=command, also=args.also,
            all_configurations=args.all_configurations,
        )  # fmt: skip
    except SynnetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for s in summaries:
        print(
            f"{s.model:40s} {s.dataset:12s} {s.target:5s} PSNR {pm(s.mean['psnr'], s.std['psnr'], 2)} dB  "
            f"SSIM {pm(s.mean['ssim'], s.std['ssim'], 4)}  brain {pm(s.mean['psnr_brain'], s.std['psnr_brain'], 2)} dB"
            f" / {pm(s.mean['ssim_brain'], s.std['ssim_brain'], 4)}"
        )
    reports = [args.out / "report.md", *sorted(args.out.glob("*/configurations.md"))]
    print("report:", ", ".join(str(path) for path in reports if path.exists()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
