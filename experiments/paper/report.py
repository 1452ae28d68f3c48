"""``experiments/results/paper.md``: the paper's Tables 3 and 4 reproduced, beside its published numbers.

Every number on the page is read from a data file: the comparison models' evaluation summary (``summary.csv``,
written by :mod:`training.evaluate`), their training compute (``compute.csv``, kept from their manifests because
the models are not committed), the paper's own numbers (``published.csv``) and the recipe the runs trained. The
sentences that compare us with the paper are computed from those numbers (which method or loss ranks first, by how
much), so a rerun with other budgets rewrites them truthfully.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from experiments.paper.plan import (
    COMPARISON_RECIPE,
    MIMO,
    MISO,
    SISO,
    TABLE3_ARCHS,
    TABLE4_LOSSES,
    PlannedRun,
    comparison_runs,
)
from synnet.manifest import ModelManifest
from training.fitting.recipe import load_recipe

RESULTS = Path("experiments/results/paper")
PAGE = Path("experiments/results/paper.md")
PUBLISHED = Path(__file__).with_name("published.csv")
ARCH_LABELS = {"cnn": "CM-1 CNN", "deconvnet": "CM-2 Deconv-net", "unet": "CM-3 U-Net", "synnet": "SynNet"}
LOSS_LABELS = {"l2": "L2", "wl2": "weighted L2", "joint": "joint"}
MAIN_DATASET = "brats18"  # the folder name of the test cases; summaries without a dataset column hold only its rows

Scores = dict[str, float]
# (table, method, src, dst, target) -> (PSNR, SSIM) as the paper prints them; method: an arch (3) or a loss (4)
Published = dict[tuple[str, str, str, str, str], tuple[float, float]]


def read_summary(path: Path, dataset: str = MAIN_DATASET) -> dict[tuple[str, str], Scores]:
    """(model, target) → {metric_mean/metric_std: value} of ``dataset``'s rows in an evaluation ``summary.csv``.

    A summary without a dataset column (before ``training.evaluate --also``) counts as :data:`MAIN_DATASET`.
    """
    table: dict[tuple[str, str], Scores] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("dataset", MAIN_DATASET) != dataset:
                continue
            values = {
                k: (float(v) if v not in ("", None) else math.nan)
                for k, v in row.items()
                if k.endswith(("_mean", "_std"))
            }
            table[(row["model"], row["target"])] = values
    return table


def read_published(path: Path = PUBLISHED) -> Published:
    """The paper's Tables 3 and 4 as published (``../shared/paper/synnet.txt``)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = ("table", "method", "src", "dst", "target")
    return {tuple(r[k] for k in keys): (float(r["psnr"]), float(r["ssim"])) for r in rows}


def recorded_compute(store: Path, record: Path = RESULTS / "compute.csv") -> dict[str, tuple[str, str]]:
    """model → (steps, seconds) of every comparison run: from its manifest in ``store``, else from ``record``.

    Rewrites ``record`` when the store holds manifests it lacks, so the record follows the store.
    """
    kept: dict[str, tuple[str, str]] = {}
    if record.is_file():
        with record.open(newline="") as handle:
            kept = {row["model"]: (row["steps"], row["train_seconds"]) for row in csv.DictReader(handle)}
    merged = dict(kept)
    for run in comparison_runs():
        if (store / run.name / "manifest.json").is_file():
            training = ModelManifest.load(store / run.name).training
            merged[run.name] = str(training.get("steps", "?")), str(training.get("train_seconds", "?"))
    if merged != kept and record.parent.is_dir():
        with record.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["model", "steps", "train_seconds"])
            writer.writerows([name, *merged[name]] for name in sorted(merged))
    return merged


def _fmt(scores: Scores | None, metric: str, digits: int) -> str:
    if scores is None or math.isnan(scores.get(f"{metric}_mean", math.nan)):
        return "–"
    return f"{scores[f'{metric}_mean']:.{digits}f} ± {scores[f'{metric}_std']:.{digits}f}"


def _steps(cost: tuple[str, str] | None) -> str:
    return "–" if cost is None else f"{cost[0]} / {cost[1]} s"


def _scores_cells(got: Scores | None) -> str:
    """Whole and in-brain PSNR / SSIM, four table cells."""
    cells = (("psnr", 2), ("ssim", 4), ("psnr_brain", 2), ("ssim_brain", 4))
    return " | ".join(_fmt(got, metric, digits) for metric, digits in cells)


def _run(runs: list[PlannedRun], arch: str, loss: str, src: tuple[str, ...], dst: tuple[str, ...]) -> PlannedRun:
    return next(r for r in runs if (r.arch, r.loss, r.src, r.dst) == (arch, loss, src, dst))


def _ranking_sentence(label: str, ours: dict[str, float], paper: dict[str, float], names: dict[str, str]) -> str:
    if not all(math.isfinite(v) for v in ours.values()):
        return f"{label}: not all models were evaluated."
    our_order = sorted(ours, key=ours.get, reverse=True)
    paper_order = sorted(paper, key=paper.get, reverse=True)
    same = "the same order as" if our_order == paper_order else "unlike"
    return (
        f"{label}: by brain SSIM ours rank {' > '.join(names[k] for k in our_order)}, {same} the paper's SSIM "
        f"ranking ({' > '.join(names[k] for k in paper_order)})."
    )


def table3(
    scores: dict[tuple[str, str], Scores], compute: dict[str, tuple[str, str]], published: Published
) -> tuple[list[str], list[str]]:
    """Markdown rows of Table 3 and the sentences comparing its ranking with the paper's."""
    runs = comparison_runs()
    lines, notes = [], []
    for src, dst in SISO:
        (s,), (d,) = src, dst
        lines += [
            f"**{s} → {d}**",
            "",
            "| method | PSNR whole | SSIM whole | PSNR brain | SSIM brain | paper PSNR | paper SSIM | steps / time |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        ours, paper, spreads = {}, {}, []
        for arch in TABLE3_ARCHS:
            run = _run(runs, arch, "l2", src, dst)
            got = scores.get((run.name, d))
            paper_psnr, paper[arch] = published[("table3", arch, s, d, d)]
            ours[arch] = got["ssim_brain_mean"] if got else math.nan
            spreads.append(got["ssim_brain_std"] if got else math.nan)
            lines.append(
                f"| {ARCH_LABELS[arch]} | {_scores_cells(got)} | {paper_psnr:.2f} | {paper[arch]:.2f} "
                f"| {_steps(compute.get(run.name))} |"
            )
        lines.append("")
        sentence = _ranking_sentence(f"{s}→{d}", ours, paper, ARCH_LABELS)
        values = [v for v in ours.values() if math.isfinite(v)]
        typical_std = float(np.nanmean(spreads)) if spreads else math.nan
        if values and max(values) - min(values) < typical_std:
            sentence += (
                f" The four lie within {max(values) - min(values):.3f} brain SSIM of each other, less than the "
                f"spread over test cases ({typical_std:.3f}): runs this short do not separate the architectures."
            )
        notes.append(sentence)
    return lines, notes


def table4(
    scores: dict[tuple[str, str], Scores], compute: dict[str, tuple[str, str]], published: Published
) -> tuple[list[str], list[str]]:
    """Markdown rows of Table 4 and the sentence comparing which loss wins with the paper's."""
    runs = comparison_runs()
    lines = [
        "| configuration | target | loss | PSNR whole | SSIM whole | PSNR brain | SSIM brain | paper PSNR | paper SSIM "
        "| steps / time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    agreements, total, joint_best_psnr = 0, 0, 0
    for group, configs in (("SISO", SISO), ("MISO", MISO), ("MIMO", MIMO)):
        for src, dst in configs:
            label = f"{group} {','.join(src)} → {','.join(dst)}"
            for target in dst:
                ours, paper, psnrs = {}, {}, {}
                for loss in TABLE4_LOSSES:
                    run = _run(runs, "synnet", loss, src, dst)
                    got = scores.get((run.name, target))
                    paper_psnr, paper[loss] = published[("table4", loss, ",".join(src), ",".join(dst), target)]
                    ours[loss] = got["ssim_brain_mean"] if got else math.nan
                    psnrs[loss] = got["psnr_brain_mean"] if got else math.nan
                    lines.append(
                        f"| {label} | {target} | {LOSS_LABELS[loss]} | {_scores_cells(got)} | {paper_psnr:.2f} "
                        f"| {paper[loss]:.2f} | {_steps(compute.get(run.name))} |"
                    )
                if all(math.isfinite(v) for v in ours.values()):
                    total += 1
                    agreements += max(ours, key=ours.get) == max(paper, key=paper.get)
                    joint_best_psnr += max(psnrs, key=psnrs.get) == "joint"
    note = (
        f"The loss with the best brain SSIM is the one with the paper's best SSIM in {agreements} of {total} "
        f"configuration-target pairs; by brain PSNR the joint loss is best in {joint_best_psnr} of {total}."
    )
    return lines, [note]


def how_it_was_made(compute: dict[str, tuple[str, str]]) -> list[str]:
    """The recipe, the budget and the test cases, as the data files and the recipe record them."""
    test_cases = load_recipe(COMPARISON_RECIPE)[0].get("test_cases", "")
    steps = [int(s) for s, _ in compute.values() if s.isdigit()]
    seconds = [float(t) for _, t in compute.values() if t.replace(".", "", 1).isdigit()]
    budget = f"{np.median(seconds):.0f} s of training each" if seconds else "their training time"
    spread = f" ({min(steps)}–{max(steps)} optimizer steps)" if steps else ""
    return [
        f"- **Runs**: {len(comparison_runs())}, each `{COMPARISON_RECIPE.as_posix()}` with the run's architecture, "
        f"loss, sources and targets over it, {budget}{spread}; the *steps / time* column is each run's own.",
        f"- **Test cases**: {test_cases.replace(',', ', ') or 'those the recipe holds out'}, never trained on; "
        "mean ± std over them, volume by volume.",
        "- *Whole*: PSNR/SSIM (Gaussian window 11, σ 1.5) over the whole volume in model space (each volume's "
        "0.5–99.5 percentiles inside the brain mapped to [0, 1], background 0); the black background inflates them.",
        "- *Brain*: our own, strict convention (not BraSyn's), inside the brain mask only, each image clipped at its "
        "own 0.5/99.5 percentiles there and scaled to [0, 1].",
        "- The paper does not say how it normalized or masked; its numbers sit between our two columns, so compare "
        "**rankings**, not absolute values.",
    ]


REPRODUCE = [
    "```bash",
    "python -m experiments.paper tables --jobs 12        # train (resumable), evaluate, write this page",
    "# or step by step",
    "python -m experiments.paper train --only tables --jobs 12",
    "python -m experiments.paper report --evaluate ../shared/data/brats18   # score runs/paper/store, write the page",
    "```",
]


def render(summary: Path, compute: dict[str, tuple[str, str]], published: Published) -> str:
    """The page's markdown."""
    scores = read_summary(summary)
    t3, notes3 = table3(scores, compute, published)
    t4, notes4 = table4(scores, compute, published)
    lines = [
        "# The SynNet paper's Tables 3 and 4, reproduced",
        "",
        f"Generated by `python -m experiments.paper report` from `{summary.as_posix()}`, "
        f"`{(summary.parent / 'compute.csv').as_posix()}` and `experiments/paper/published.csv`; do not edit by "
        "hand. The bundled models and their scores are in docs/results.md.",
        "",
        *REPRODUCE,
        "",
        "## How the runs were made and scored",
        "",
        *how_it_was_made(compute),
        "",
        "## Table 3: architectures, L2 loss",
        "",
        *t3,
        *(f"- {note}" for note in notes3),
        "",
        "## Table 4: SynNet with L2, weighted L2 and joint loss",
        "",
        *t4,
        "",
        *(f"- {note}" for note in notes4),
    ]
    return "\n".join(lines) + "\n"


def report(store: Path, results: Path = RESULTS, out: Path = PAGE) -> None:
    """Write ``out`` from ``results``' summary and compute record (refreshed from ``store``'s manifests)."""
    compute = recorded_compute(store, results / "compute.csv")
    out.write_text(render(results / "summary.csv", compute, read_published()))
