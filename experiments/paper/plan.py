"""The runs that reproduce the paper, the paper's own numbers, and where each run is exported.

The plan (:func:`plan`):

* Table 3 of the paper: CM-1 (cnn), CM-2 (deconvnet), CM-3 (unet) and SynNet, L2 loss,
  for T1→T2 and T2→T1.
* Table 4: SynNet with L2, weighted L2 and the joint loss for the SISO, MISO and MIMO
  configurations of the paper (the SynNet/L2/SISO runs are shared with Table 3).
* The bundled models: the paper's six configurations, the four "three to the missing one" models and
  six T1c models (from T1, T2 and FLAIR alone or paired), FLAIR from T1 and from T1c, and FLAIR -> T1,
  SynNet with the bundled recipe, trained longer, exported to ``model_store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.fitting.config import default_name

SISO = (("T1",), ("T2",)), (("T2",), ("T1",))
MISO = (("T1", "T1c"), ("T2",)), (("T2", "FLAIR"), ("T1",))
MIMO = (("T1", "T1c"), ("T2", "FLAIR")), (("T2", "FLAIR"), ("T1", "T1c"))
THREE_TO_ONE = (
    (("T1", "T1c", "T2"), ("FLAIR",)),
    (("T1", "T1c", "FLAIR"), ("T2",)),
    (("T1", "T2", "FLAIR"), ("T1c",)),
    (("T1c", "T2", "FLAIR"), ("T1",)),
)
# T1c from T1 alone and from T1 with T2 or FLAIR: the unified model scores below the per-intensity lookup
# table there (docs/results.md, "Every configuration"); a dedicated network serves them where routing finds
# it better.
T1C_FROM_T1 = (
    (("T1",), ("T1c",)),
    (("T1", "T2"), ("T1c",)),
    (("T1", "FLAIR"), ("T1c",)),
)
# T1c from T2 and FLAIR without T1: the unified model's weakest T1c rows (7.6-9.1 dB) and the MIMO model's T1c.
T1C_WITHOUT_T1 = (
    (("T2",), ("T1c",)),
    (("FLAIR",), ("T1c",)),
    (("T2", "FLAIR"), ("T1c",)),
)
# FLAIR without T2: the unified model's weakest rows (6.9-8.0 dB, below the lookup table). A T1,T1c -> FLAIR model
# (14.40 / 0.420) is not bundled: T1 -> FLAIR, trained on more subjects, scores higher and routing serves it there.
FLAIR_WITHOUT_T2 = (
    (("T1",), ("FLAIR",)),
    (("T1c",), ("FLAIR",)),
)
FLAIR_TO_T1 = ((("FLAIR",), ("T1",)),)
# Runs that also train on the 9 subjects with only T1, FLAIR and a whole-tumour mask (training.fit --extra-data;
# train.py passes the folder given to ``python -m experiments.paper train --extra-data``): 21 subjects instead of 12,
# and the tumour weight on all of them (ablation.md, session 11: T1 -> FLAIR 7.98 / 0.351 -> 15.29 / 0.443 at
# 2000 steps).
PARTIAL_SUBJECT_RUNS = {(("T1",), ("FLAIR",)), (("FLAIR",), ("T1",))}
BUNDLED_CONFIGURATIONS = (
    *SISO, *MISO, *MIMO, *THREE_TO_ONE, *T1C_FROM_T1, *T1C_WITHOUT_T1, *FLAIR_WITHOUT_T2, *FLAIR_TO_T1
)  # fmt: skip
TABLE3_ARCHS = ("cnn", "deconvnet", "unet", "synnet")
TABLE4_LOSSES = ("l2", "wl2", "joint")
# The bundled models' recipe, adopted from the ablation (experiments/results/ablation.md, arm m): the joint loss
# with an L1 intensity term, computed inside the brain only and weighed 5x inside the tumour, intensity
# augmentation of the sources, and the banded intensity-distribution term at weight 3. The comparison
# runs keep the paper's recipe, so its tables stay reproducible.
BUNDLED_LOSS = "joint_l1"
HISTOGRAM_BANDS = "0,1,10,50,90,99,100"  # percentile band edges of the distribution term


def distribution_recipe(histogram_weight: str) -> tuple[str, ...]:
    """Arm m of the ablation with the intensity-distribution term at ``histogram_weight``."""
    return (
        "--mask-loss",
        "--intensity-augment",
        "--tumour-weight", "5",
        "--histogram-weight", histogram_weight,
        "--histogram-bands", HISTOGRAM_BANDS,
    )  # fmt: skip


BUNDLED_RECIPE = distribution_recipe("3")
# Some models weigh the term 10 (the ablation's arm l): a T1c's bright tail of enhancement and vessels, and a
# FLAIR's bright lesion, are what sources without them do not locate, and the term is what restores the
# intensity distribution (ablation, T1 -> T1c: l +0.26 dB / +0.002 over m at 1500 steps; at 2000 steps the
# dedicated models gain T1 -> T1c +1.03 dB / +0.013, T1,FLAIR -> T1c +0.88 / +0.020 and T1c -> FLAIR
# +0.53 / +0.005). For T1,T2 -> T1c (-0.21 / -0.006), T1,T2,FLAIR -> T1c (+0.43 / -0.001) and T1 -> FLAIR
# (+0.39 / -0.002) it scored within the noise, so those bundled models keep weight 3. The T1c models without
# T1 were trained with weight 10 from the start. Session 12 moved T1 -> T1c and those to weight 30 (below).
DISTRIBUTION_10_RECIPE = distribution_recipe("10")
DISTRIBUTION_10_RUNS = {(("T1", "FLAIR"), ("T1c",)), (("T1c",), ("FLAIR",))}
# Weighed 30 (ablation.md, session 12), the T1c models without T1 gain on both means: T2 -> T1c 8.80 / 0.399 ->
# 11.22 / 0.436, FLAIR -> T1c 8.57 / 0.329 -> 10.46 / 0.351, T2,FLAIR -> T1c 10.63 / 0.427 -> 11.67 / 0.432; T1 -> T1c
# 11.31 / 0.4830 -> 11.72 / 0.4825 (PSNR higher in all 4 test cases and on BraTS 2023, SSIM within the noise), which
# takes it above the lookup table's 11.57 dB. T1,FLAIR -> T1c scored lower (12.50 / 0.491) and keeps 10; the L2 joint
# loss for T1 -> T1c scored 11.00 / 0.477.
DISTRIBUTION_30_RECIPE = distribution_recipe("30")
DISTRIBUTION_30_RUNS = {(("T1",), ("T1c",)), *T1C_WITHOUT_T1}


# CPU step budgets of their own (experiments/scripts/dedicated_cpu.sh; the others get its STEPS, 2000). With 21
# subjects, twice the steps gained T1 -> FLAIR +1.0 dB / +0.008 (ablation.md, session 11; at 12
# subjects T1 -> T2 gained nothing).
# The GPU trainer (train.py) gives every bundled run the same time instead.
CPU_STEPS = {(("T1",), ("FLAIR",)): 4000}


def bundled_recipe(src: tuple[str, ...], dst: tuple[str, ...]) -> tuple[str, ...]:
    """The training.fit options the bundled model for ``src -> dst`` was trained with."""
    if (src, dst) in DISTRIBUTION_30_RUNS:
        return DISTRIBUTION_30_RECIPE
    return DISTRIBUTION_10_RECIPE if (src, dst) in DISTRIBUTION_10_RUNS else BUNDLED_RECIPE


BUNDLED_EXAMPLE = "synnet_t1_to_t2"  # whose manifest states the split in the report
COMPARISON, BUNDLED = "comparison", "bundled"

# The paper's Tables 3 and 4 (PSNR dB, SSIM), keyed by (arch or loss, src, dst, target).
PAPER_TABLE3 = {
    ("cnn", "T1", "T2", "T2"): (13.89, 0.63), ("cnn", "T2", "T1", "T1"): (15.82, 0.74),
    ("deconvnet", "T1", "T2", "T2"): (19.93, 0.54), ("deconvnet", "T2", "T1", "T1"): (17.95, 0.54),
    ("unet", "T1", "T2", "T2"): (16.45, 0.52), ("unet", "T2", "T1", "T1"): (18.93, 0.50),
    ("synnet", "T1", "T2", "T2"): (20.75, 0.65), ("synnet", "T2", "T1", "T1"): (19.80, 0.64),
}  # fmt: skip
PAPER_TABLE4 = {
    ("l2", "T1", "T2", "T2"): (20.75, 0.65), ("l2", "T2", "T1", "T1"): (19.80, 0.64),
    ("wl2", "T1", "T2", "T2"): (21.80, 0.77), ("wl2", "T2", "T1", "T1"): (20.61, 0.69),
    ("joint", "T1", "T2", "T2"): (22.80, 0.86), ("joint", "T2", "T1", "T1"): (21.65, 0.70),
    ("l2", "T1,T1c", "T2", "T2"): (20.44, 0.71), ("l2", "T2,FLAIR", "T1", "T1"): (18.91, 0.74),
    ("wl2", "T1,T1c", "T2", "T2"): (22.56, 0.70), ("wl2", "T2,FLAIR", "T1", "T1"): (22.53, 0.74),
    ("joint", "T1,T1c", "T2", "T2"): (16.82, 0.80), ("joint", "T2,FLAIR", "T1", "T1"): (20.35, 0.81),
    ("l2", "T1,T1c", "T2,FLAIR", "T2"): (19.95, 0.70), ("l2", "T1,T1c", "T2,FLAIR", "FLAIR"): (17.73, 0.60),
    ("l2", "T2,FLAIR", "T1,T1c", "T1"): (18.33, 0.67), ("l2", "T2,FLAIR", "T1,T1c", "T1c"): (18.03, 0.62),
    ("wl2", "T1,T1c", "T2,FLAIR", "T2"): (21.05, 0.79), ("wl2", "T1,T1c", "T2,FLAIR", "FLAIR"): (20.91, 0.72),
    ("wl2", "T2,FLAIR", "T1,T1c", "T1"): (20.07, 0.75), ("wl2", "T2,FLAIR", "T1,T1c", "T1c"): (19.73, 0.73),
    ("joint", "T1,T1c", "T2,FLAIR", "T2"): (21.05, 0.79), ("joint", "T1,T1c", "T2,FLAIR", "FLAIR"): (20.91, 0.81),
    ("joint", "T2,FLAIR", "T1,T1c", "T1"): (20.55, 0.81), ("joint", "T2,FLAIR", "T1,T1c", "T1c"): (19.78, 0.76),
}  # fmt: skip


@dataclass(frozen=True)
class PlannedRun:
    """One ``training.fit`` of the plan and the tables it appears in."""

    name: str
    arch: str
    src: tuple[str, ...]
    dst: tuple[str, ...]
    loss: str
    kind: str
    tables: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # further training.fit flags of the run's recipe
    partial_subjects: bool = False  # also trains on the subjects that have only some modalities (--extra-data)
    cpu_steps: int | None = None  # its own step budget on the CPU (CPU_STEPS), else the CPU trainer's

    @property
    def config_label(self) -> str:
        return f"{','.join(self.src)}→{','.join(self.dst)}"


def comparison_name(arch: str, loss: str, src: Sequence[str], dst: Sequence[str]) -> str:
    return f"paper_{loss}_{default_name(arch, tuple(src), tuple(dst))}"


def plan() -> list[PlannedRun]:
    """Table 3, Table 4 (sharing SynNet/L2/SISO with Table 3), then the bundled models."""
    runs: dict[str, PlannedRun] = {}

    def add(arch: str, loss: str, src: tuple[str, ...], dst: tuple[str, ...], table: str) -> None:
        name = comparison_name(arch, loss, src, dst)
        known = runs.get(name)
        tables = (*known.tables, table) if known else (table,)
        runs[name] = PlannedRun(name, arch, src, dst, loss, COMPARISON, tables)

    for src, dst in SISO:
        for arch in TABLE3_ARCHS:
            add(arch, "l2", src, dst, "table3")
    for src, dst in (*SISO, *MISO, *MIMO):
        for loss in TABLE4_LOSSES:
            add("synnet", loss, src, dst, "table4")
    bundled = [
        PlannedRun(
            default_name("synnet", src, dst),
            "synnet",
            src,
            dst,
            BUNDLED_LOSS,
            BUNDLED,
            options=bundled_recipe(src, dst),
            partial_subjects=(src, dst) in PARTIAL_SUBJECT_RUNS,
            cpu_steps=CPU_STEPS.get((src, dst)),
        )
        for src, dst in BUNDLED_CONFIGURATIONS
    ]
    return [*runs.values(), *bundled]


def select(runs: Sequence[PlannedRun], only: str) -> list[PlannedRun]:
    """The runs of ``--only``: ``all``, ``tables`` (the comparison runs) or ``bundled``."""
    if only == "all":
        return list(runs)
    kind = {"tables": COMPARISON, "bundled": BUNDLED}[only]
    return [run for run in runs if run.kind == kind]


@dataclass(frozen=True)
class Stores:
    """Where each kind of run is exported: the comparison models apart from the bundled ones."""

    comparison: Path
    bundled: Path

    def of(self, run: PlannedRun) -> Path:
        return self.bundled if run.kind == BUNDLED else self.comparison


def is_exported(run: PlannedRun, stores: Stores) -> bool:
    return (stores.of(run) / run.name / "manifest.json").exists()
