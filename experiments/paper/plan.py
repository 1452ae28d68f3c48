"""The runs behind the paper's Tables 3 and 4 and the bundled models, each one a recipe of ``recipes/``.

The plan (:func:`plan`):

* Table 3 of the paper: CM-1 (cnn), CM-2 (deconvnet), CM-3 (unet) and SynNet, L2 loss, for T1→T2 and T2→T1.
* Table 4: SynNet with L2, weighted L2 and the joint loss for the paper's SISO, MISO and MIMO configurations
  (the SynNet/L2/SISO runs are shared with Table 3).

  Both tables' runs train ``recipes/h200.toml`` (the GPU recipe the tables were made with) with the run's
  architecture, loss, sources and targets as flags over it.
* The bundled models: one run per ``recipes/bundled/<name>.toml``, exported as ``<name>``, so the plan retrains
  each one as its manifest says it was trained.

Recipes are read from the repository root, where the lab runs, so the manifests name them as the bundled ones do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from synnet.modalities import Modality
from training.fitting.config import FitConfig, default_name
from training.fitting.recipe import load_recipe

RECIPES = Path("recipes")
COMPARISON_RECIPE = RECIPES / "h200.toml"
BUNDLED_RECIPES = RECIPES / "bundled"

SISO = (("T1",), ("T2",)), (("T2",), ("T1",))
MISO = (("T1", "T1c"), ("T2",)), (("T2", "FLAIR"), ("T1",))
MIMO = (("T1", "T1c"), ("T2", "FLAIR")), (("T2", "FLAIR"), ("T1", "T1c"))
TABLE3_ARCHS = ("cnn", "deconvnet", "unet", "synnet")
TABLE4_LOSSES = ("l2", "wl2", "joint")
COMPARISON, BUNDLED = "comparison", "bundled"
EVERY_MODALITY = tuple(m.value for m in Modality)


@dataclass(frozen=True)
class PlannedRun:
    """One ``training.fit`` of the plan: its recipe, the flags over it, and what the two make."""

    name: str
    kind: str
    recipe: Path
    arch: str
    loss: str
    src: tuple[str, ...]
    dst: tuple[str, ...]
    overrides: tuple[str, ...] = ()  # training.fit flags over the recipe (the comparison runs' own settings)
    tables: tuple[str, ...] = ()
    extra_data: bool = False  # the recipe also trains on subjects that have only some modalities
    device: str = "auto"  # where the recipe trains (recipes/cpu.toml: "cpu", recipes/h200.toml: "cuda")

    @property
    def config_label(self) -> str:
        return f"{','.join(self.src)}→{','.join(self.dst)}"


def comparison_name(arch: str, loss: str, src: Sequence[str], dst: Sequence[str]) -> str:
    return f"paper_{loss}_{default_name(arch, tuple(src), tuple(dst))}"


def recipe_run(
    name: str, kind: str, recipe: Path, overrides: dict[str, object], tables: tuple[str, ...] = ()
) -> PlannedRun:
    """The run that trains ``recipe`` with ``overrides`` (flat option names) over it."""
    options, _ = load_recipe(recipe)
    config = FitConfig().with_options(**{**options, **overrides})
    any_to_any = config.model.arch == "unified"
    flags = tuple(
        word
        for key, value in overrides.items()
        for word in (f"--{key.replace('_', '-')}", ",".join(value) if isinstance(value, tuple) else str(value))
    )
    return PlannedRun(
        name=name,
        kind=kind,
        recipe=recipe,
        arch=config.model.arch,
        loss=config.model.loss,
        src=EVERY_MODALITY if any_to_any else tuple(config.src),
        dst=EVERY_MODALITY if any_to_any else tuple(config.dst),
        overrides=flags,
        tables=tables,
        extra_data=bool(config.data.extra_data),
        device=config.runtime.device,
    )


def comparison_runs() -> list[PlannedRun]:
    """Table 3, then Table 4; a run both tables hold is planned once, with both table names."""
    cells: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for src, dst in SISO:
        for arch in TABLE3_ARCHS:
            cells.setdefault((arch, "l2", src, dst), []).append("table3")
    for src, dst in (*SISO, *MISO, *MIMO):
        for loss in TABLE4_LOSSES:
            cells.setdefault(("synnet", loss, src, dst), []).append("table4")
    return [
        recipe_run(
            comparison_name(arch, loss, src, dst),
            COMPARISON,
            COMPARISON_RECIPE,
            {"arch": arch, "loss": loss, "src": src, "dst": dst},
            tuple(tables),
        )
        for (arch, loss, src, dst), tables in cells.items()
    ]


def bundled_runs(folder: Path = BUNDLED_RECIPES) -> list[PlannedRun]:
    """One run per bundled recipe, named after it (the model it made)."""
    return [recipe_run(path.stem, BUNDLED, path, {}) for path in sorted(folder.glob("*.toml"))]


def plan() -> list[PlannedRun]:
    """The comparison runs of both tables, then the bundled models."""
    return [*comparison_runs(), *bundled_runs()]


def select(runs: Sequence[PlannedRun], only: str, device: str | None = None) -> list[PlannedRun]:
    """The runs of ``--only`` (``all``, ``tables``: the comparison runs, or ``bundled``) whose recipe trains on
    ``device`` (any when None)."""
    kinds = {"all": (COMPARISON, BUNDLED), "tables": (COMPARISON,), "bundled": (BUNDLED,)}[only]
    return [run for run in runs if run.kind in kinds and device in (None, run.device)]


@dataclass(frozen=True)
class Stores:
    """Where each kind of run is exported: the comparison models apart from the bundled ones."""

    comparison: Path
    bundled: Path

    def of(self, run: PlannedRun) -> Path:
        return self.bundled if run.kind == BUNDLED else self.comparison


def is_exported(run: PlannedRun, stores: Stores) -> bool:
    return (stores.of(run) / run.name / "manifest.json").exists()
