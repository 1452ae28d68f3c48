"""Evaluate exported models on the held-out cases of a BraTS folder, volume by volume.

``python -m training.evaluate --data ../shared/data/brats18 --models synnet_t1_to_t2,...``

Each model synthesizes each of its test cases (the ``test_cases`` its manifest records, unless
``--cases`` names others) through the service's own code path (:mod:`service.synthesis`: per-volume
normalization, empty slices skipped, brain bounding box), so these numbers are what the service
reports for the same upload. Scores, per case and target, in model space:

* PSNR and SSIM over the whole volume, and inside the brain with the BraSyn convention
  (:func:`synnet.metrics.evaluate`);
* when the case has a ``seg`` file, PSNR and SSIM inside the tumour regions of BraTS: whole tumour
  (labels 1, 2, 4), tumour core (1, 4) and enhancing tumour (4), on the brain-scaled images.

The report folder gets ``per_case.csv``, ``summary.csv`` (mean ± std over cases), ``report.md``
and one figure per model (sources, truth, synthesized and error for a few slices). Rows already in
``per_case.csv`` are reused, so an interrupted evaluation continues where it stopped.
``--write-manifest`` stores the means in each manifest's ``evaluation``; the models' sha256 is
of the TorchScript file alone, so this does not invalidate them.
"""

from __future__ import annotations

import argparse
import asyncio
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
import torch

from service.registry import LoadedModel, ModelRegistry
from service.synthesis import model_input, run_model
from synnet.errors import SynnetError
from synnet.manifest import ModelManifest, TargetMetrics
from synnet.metrics import brain_scaled, evaluate, psnr, ssim_in_regions
from synnet.modalities import Modality
from synnet.normalization import brain_mask, normalize
from training.data.brats import BratsCase, LoadedCase, find_cases, load_case

logger = logging.getLogger(__name__)

# BraTS tumour regions by label: 1 necrotic/non-enhancing core, 2 oedema, 4 enhancing tumour
REGIONS = {"wt": (1, 2, 4), "tc": (1, 4), "et": (4,)}
BASE_METRICS = ("psnr", "ssim", "psnr_brain", "ssim_brain")
REGION_METRICS = tuple(f"{metric}_{region}" for region in REGIONS for metric in ("psnr", "ssim"))
METRICS = BASE_METRICS + REGION_METRICS
KEY_FIELDS = ("model", "case", "target")


class EvaluationError(SynnetError):
    code = "evaluation_failed"


class _DirectBatcher:
    """Stands in for :class:`service.batcher.Batcher`: one process, one request, no grouping."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model

    async def submit(self, chunk: torch.Tensor) -> torch.Tensor:
        return self.model.forward(chunk)


def synthesize(
    model: LoadedModel, sources: dict[Modality, np.ndarray], mask: np.ndarray, batch_size: int
) -> np.ndarray:
    """(len(dst), X, Y, Z) model-space prediction, computed as the service computes it."""
    x = model_input(sources, mask, model.manifest)
    y, _ = asyncio.run(run_model(x, mask, model.manifest, _DirectBatcher(model), batch_size=batch_size))  # type: ignore[arg-type]
    return y


def score(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, seg: np.ndarray | None) -> dict[str, float]:
    """Whole, brain and (with ``seg``) tumour-region PSNR/SSIM of one model-space target volume."""
    report = evaluate(pred, truth, mask)
    scores = {name: getattr(report, name) for name in BASE_METRICS}
    if seg is None:
        return scores | {name: math.nan for name in REGION_METRICS}
    regions = {name: np.isin(seg, labels) & mask for name, labels in REGIONS.items()}
    pred_b, truth_b = brain_scaled(pred, mask), brain_scaled(truth, mask)
    region_ssim = ssim_in_regions(pred_b, truth_b, regions)
    for name, region in regions.items():
        scores[f"psnr_{name}"] = psnr(pred_b, truth_b, data_range=1.0, mask=region) if region.any() else math.nan
        scores[f"ssim_{name}"] = region_ssim[name]
    return scores


@dataclass
class CasePrediction:
    """One model's synthesis of one case, with what scoring and the figure both need."""

    case_id: str
    loaded: LoadedCase
    mask: np.ndarray
    y: np.ndarray
    seconds: float

    def model_space(self, modality: Modality, manifest: ModelManifest) -> np.ndarray:
        """A real image of the case in model space, normalized as the service normalizes what it is sent."""
        return normalize(self.loaded.images[modality], self.mask, manifest.normalization)[0]


def predict_case(model: LoadedModel, case: BratsCase, batch_size: int) -> CasePrediction:
    """Load ``case`` and synthesize every target of ``model`` the way the service does."""
    manifest = model.manifest
    needed = (*manifest.src, *manifest.dst)
    missing = case.missing(needed)
    if missing:
        listed = ", ".join(m.value for m in missing)
        raise EvaluationError(f"case {case.case_id} has no {listed}", code="missing_modality")
    loaded = load_case(case, needed, load_seg=True)
    sources = {m: loaded.images[m] for m in manifest.src}
    mask = brain_mask(list(sources.values()))  # as the service does: the sources' nonzero voxels
    started = time.perf_counter()
    y = synthesize(model, sources, mask, batch_size)
    return CasePrediction(case.case_id, loaded, mask, y, time.perf_counter() - started)


def score_prediction(manifest: ModelManifest, prediction: CasePrediction) -> list[dict[str, object]]:
    """One row per target of the model on the predicted case."""
    rows = []
    for channel, target in enumerate(manifest.dst):
        truth = prediction.model_space(target, manifest)
        scores = score(prediction.y[channel], truth, prediction.mask, prediction.loaded.seg)
        keys = {"model": manifest.name, "case": prediction.case_id, "target": target.value}
        rows.append({**keys, **scores, "seconds": prediction.seconds})
    return rows


@dataclass
class Summary:
    """Mean and (population) std over cases of each metric for one model and target."""

    model: str
    target: str
    n_cases: int
    mean: dict[str, float]
    std: dict[str, float]


def summarize(rows: Sequence[dict[str, object]]) -> list[Summary]:
    groups: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((str(row["model"]), str(row["target"])), []).append(row)
    summaries = []
    for (model, target), group in groups.items():
        mean, std = {}, {}
        for metric in METRICS:
            values = np.array([float(row[metric]) for row in group], dtype=np.float64)
            values = values[np.isfinite(values)]
            mean[metric] = float(values.mean()) if values.size else math.nan
            std[metric] = float(values.std()) if values.size else math.nan
        summaries.append(Summary(model, target, len(group), mean, std))
    return summaries


def read_rows(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def write_rows(path: Path, rows: Sequence[dict[str, object]]) -> None:
    fields = [*KEY_FIELDS, *METRICS, "seconds"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(row[key]) for key in fields})


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if math.isnan(value) else ("inf" if math.isinf(value) else f"{value:.6f}")
    return value


def _float(value: object) -> float:
    return math.nan if value in ("", None) else float(value)  # type: ignore[arg-type]


def pm(mean: float, std: float, digits: int) -> str:
    return "–" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_report(summaries: Sequence[Summary], data: str, cases: dict[str, list[str]], command: str) -> str:
    lines = [
        "# Evaluation on held-out cases",
        "",
        f"Data: `{data}`. Command: `{command}`",
        "",
        "Mean ± std over cases, in model space. *Whole*: the whole volume; *brain*: inside the brain mask, "
        "each image clipped to its 0.5/99.5 percentiles there and scaled to [0, 1] (BraSyn); tumour regions "
        "(WT whole tumour, TC tumour core, ET enhancing) on the brain-scaled images.",
        "",
        "| model | target | cases | PSNR whole | SSIM whole | PSNR brain | SSIM brain |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        lines.append(
            f"| {s.model} | {s.target} | {s.n_cases} | {pm(s.mean['psnr'], s.std['psnr'], 2)} | "
            f"{pm(s.mean['ssim'], s.std['ssim'], 4)} | {pm(s.mean['psnr_brain'], s.std['psnr_brain'], 2)} | "
            f"{pm(s.mean['ssim_brain'], s.std['ssim_brain'], 4)} |"
        )
    lines += ["", "| model | target | PSNR WT | SSIM WT | PSNR TC | SSIM TC | PSNR ET | SSIM ET |"]
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in summaries:
        cells = [
            pm(s.mean[f"{metric}_{region}"], s.std[f"{metric}_{region}"], 2 if metric == "psnr" else 4)
            for region in REGIONS
            for metric in ("psnr", "ssim")
        ]
        lines.append(f"| {s.model} | {s.target} | " + " | ".join(cells) + " |")
    lines += ["", "Cases per model:", ""]
    lines += [f"- {model}: {', '.join(ids)}" for model, ids in cases.items()]
    return "\n".join(lines) + "\n"


def write_manifest_evaluation(
    folder: Path, summaries: Sequence[Summary], data: str, cases: list[str], command: str
) -> None:
    manifest = ModelManifest.load(folder)
    metrics = {}
    for s in summaries:
        values = {name: _rounded(s.mean[name]) for name in BASE_METRICS}
        values |= {f"{name}_std": _rounded(s.std[name]) for name in BASE_METRICS}
        metrics[Modality(s.target)] = TargetMetrics(**values)
    manifest.evaluation = metrics
    manifest.evaluation_data = {"data": data, "cases": cases, "command": command}
    manifest.save(folder)


def _rounded(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def figure(manifest: ModelManifest, prediction: CasePrediction, path: Path, n_slices: int = 3) -> None:
    """Sources, truth, synthesized and |error| for ``n_slices`` axial slices through the tumour (or brain)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loaded, mask, y = prediction.loaded, prediction.mask, prediction.y
    focus = loaded.seg > 0 if loaded.seg is not None and loaded.seg.any() else mask
    zs = np.flatnonzero(focus.any(axis=(0, 1)))
    chosen = zs[np.linspace(0, len(zs) - 1, n_slices + 2).round().astype(int)[1:-1]]
    columns: list[tuple[str, np.ndarray, str]] = []
    for m in manifest.src:
        columns.append((f"{m.value} (source)", prediction.model_space(m, manifest), "gray"))
    for channel, target in enumerate(manifest.dst):
        truth = prediction.model_space(target, manifest)
        columns.append((f"{target.value} truth", truth, "gray"))
        columns.append((f"{target.value} synthesized", y[channel], "gray"))
        columns.append((f"|error| {target.value}", np.abs(y[channel] - truth), "magma"))
    rows, cols = np.nonzero(mask.any(axis=2))
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    fig, axes = plt.subplots(len(chosen), len(columns), figsize=(2.2 * len(columns), 2.4 * len(chosen)), squeeze=False)
    for r, z in enumerate(chosen):
        for c, (title, volume, cmap) in enumerate(columns):
            ax = axes[r, c]
            vmax = 0.5 if cmap == "magma" else 1.0
            ax.imshow(np.rot90(volume[box[0], box[1], z]), cmap=cmap, vmin=0.0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"z = {z}", fontsize=8)
    fig.suptitle(f"{manifest.name} on {prediction.case_id} (held out)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    write_manifest: bool = False,
    command: str = "",
) -> list[Summary]:
    """Evaluate, write the report folder, and return the summaries (see the module docstring)."""
    # channels_last as the service sets it per device: faster on CPU, slower with NCHW weights on CUDA
    target = torch.device(device)
    registry = ModelRegistry.load(store, target, channels_last=target.type == "cpu")
    if registry.unavailable:
        reasons = "; ".join(f"{u.name}: {u.reason}" for u in registry.unavailable)
        raise EvaluationError(f"models in {store} failed to load: {reasons}", code="model_unavailable")
    chosen = list(names) if names else sorted(registry.models)
    unknown = [name for name in chosen if name not in registry.models]
    if unknown:
        raise EvaluationError(
            f"no model {', '.join(unknown)} in {store} (have: {', '.join(sorted(registry.models))})",
            code="unknown_model",
        )
    available = {case.case_id: case for case in find_cases(data)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    csv_path = out / "per_case.csv"
    rows = read_rows(csv_path)
    done = {(row["model"], row["case"]) for row in rows}
    cases_of: dict[str, list[str]] = {}
    for name in chosen:
        model = registry.models[name]
        ids = list(cases) if cases else list(model.manifest.training_data.test_cases)
        if not ids:
            raise EvaluationError(f"model {name} records no test cases; name them with --cases", code="no_test_cases")
        absent = [case_id for case_id in ids if case_id not in available]
        if absent:
            raise EvaluationError(f"cases {', '.join(absent)} are not in {data}", code="missing_case")
        leaked = sorted(set(ids) & set(model.manifest.training_data.train_cases))
        if leaked:
            logger.warning("%s was trained on %s: those scores are not held-out scores", name, ", ".join(leaked))
        cases_of[name] = ids
        figure_path = out / "figures" / f"{name}.png"
        for case_id in ids:
            wants_figure = figures and case_id == ids[0] and not figure_path.exists()
            if (name, case_id) in done and not wants_figure:
                continue
            prediction = predict_case(model, available[case_id], batch_size)  # once, for rows and figure
            if wants_figure:
                figure(model.manifest, prediction, figure_path)
            if (name, case_id) in done:
                continue
            new_rows = score_prediction(model.manifest, prediction)
            rows = [*rows, *new_rows]
            write_rows(csv_path, rows)  # after every case: an interrupted run loses one case at most
            for row in new_rows:
                logger.info(
                    "%s on %s → %s: PSNR %.2f dB, SSIM %.4f (brain %.2f dB / %.4f), %.1f s",
                    name, case_id, row["target"], row["psnr"], row["ssim"],
                    row["psnr_brain"], row["ssim_brain"], row["seconds"],
                )  # fmt: skip
    rows = [row for row in rows if row["model"] in cases_of and row["case"] in cases_of[str(row["model"])]]
    rows = [{**row, **{m: _float(row[m]) for m in (*METRICS, "seconds")}} for row in rows]
    summaries = [s for s in summarize(rows) if s.model in cases_of]
    order = {name: i for i, name in enumerate(chosen)}
    summaries.sort(key=lambda s: (order[s.model], s.target))
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "target", "n_cases", *(f"{m}_{k}" for m in METRICS for k in ("mean", "std"))])
        for s in summaries:
            cells = [_cell(v) for m in METRICS for v in (s.mean[m], s.std[m])]
            writer.writerow([s.model, s.target, s.n_cases, *cells])
    (out / "report.md").write_text(markdown_report(summaries, str(data), cases_of, command))
    if write_manifest:
        for name in chosen:
            folder = Path(store) / name
            own = [s for s in summaries if s.model == name]
            write_manifest_evaluation(folder, own, str(data), cases_of[name], command)
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
    parser.add_argument("--out", type=Path, default=Path("reports/evaluation"), help="report folder")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=4, help="slices per forward pass (default: %(default)s)")
    parser.add_argument("--no-figures", dest="figures", action="store_false", help="skip the PNG figures")
    parser.add_argument(
        "--write-manifest", action="store_true", help="store the means in each model's manifest (`evaluation`)"
    )
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
            figures=args.figures, write_manifest=args.write_manifest, command=command,
        )  # fmt: skip
    except SynnetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for s in summaries:
        print(
            f"{s.model:40s} {s.target:5s} PSNR {pm(s.mean['psnr'], s.std['psnr'], 2)} dB  "
            f"SSIM {pm(s.mean['ssim'], s.std['ssim'], 4)}  brain {pm(s.mean['psnr_brain'], s.std['psnr_brain'], 2)} dB"
            f" / {pm(s.mean['ssim_brain'], s.std['ssim_brain'], 4)}"
        )
    print(f"report: {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
