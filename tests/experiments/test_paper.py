"""experiments.paper: every run is a recipe of recipes/, the fit commands train it and resume, and the page of the
paper's tables is what the generator makes from the data files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from stand_in_manifests import stand_in_manifest

from experiments.paper.__main__ import main
from experiments.paper.plan import BUNDLED, COMPARISON, COMPARISON_RECIPE, Stores, plan, select
from experiments.paper.report import PAGE, RESULTS, read_published, read_summary, recorded_compute, render
from experiments.paper.train import TrainSettings, fit_command
from synnet.manifest import ModelManifest
from training.fitting.cli import build_parser, make_config, with_recipe

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def at_the_repository_root(monkeypatch) -> None:
    """The lab runs from the repository root, where the recipes' paths and its own are relative to."""
    monkeypatch.chdir(REPO)


def settings(tmp_path: Path, **changes) -> TrainSettings:
    stores = Stores(tmp_path / "comparison", tmp_path / "bundled")
    return TrainSettings(runs_dir=tmp_path / "runs", stores=stores, comparison_seconds=50, **changes)


def fit_config(command: list[str]):
    """What ``python -m training.fit`` makes of a planned command line (the recipe, its overrides, the checks)."""
    return make_config(with_recipe(vars(build_parser().parse_args(command[3:]))))


def test_the_plan_holds_every_published_cell_and_one_run_per_bundled_recipe() -> None:
    runs = plan()
    assert len({run.name for run in runs}) == len(runs)
    comparison = [run for run in runs if run.kind == COMPARISON]
    assert len(comparison) == 8 + 18 - 2  # Table 3 and 4 share SynNet/L2 for T1→T2 and T2→T1
    assert {run.recipe for run in comparison} == {COMPARISON_RECIPE}
    for table, method, src, dst, _ in read_published():
        kind = "arch" if table == "table3" else "loss"
        assert any(
            getattr(r, kind) == method and table in r.tables and (",".join(r.src), ",".join(r.dst)) == (src, dst)
            for r in comparison
        ), (table, method, src, dst)
    bundled = {run.name: run for run in runs if run.kind == BUNDLED}
    assert set(bundled) == {path.stem for path in (REPO / "recipes" / "bundled").glob("*.toml")}
    for name, run in bundled.items():  # the run is the model its manifest says it was trained as
        manifest = ModelManifest.load(REPO / "model_store" / name)
        assert manifest.training["recipe"] == run.recipe.as_posix()
        assert (run.src, run.dst) == (tuple(manifest.src), tuple(manifest.dst))


def test_a_comparison_run_trains_the_gpu_recipe_with_its_own_network_loss_and_configuration(tmp_path: Path) -> None:
    run = next(r for r in plan() if r.kind == COMPARISON and r.arch == "unet")
    command = fit_command(run, settings(tmp_path, data=Path("elsewhere/brats18")))
    config = fit_config(command)
    assert config.output.recipe == "recipes/h200.toml"
    assert (config.model.arch, config.model.loss, config.src, config.dst) == ("unet", "l2", run.src, run.dst)
    assert config.budget.time_limit == 50 and config.data.folder == "elsewhere/brats18"
    assert config.optim.optimizer == "adam" and config.model.features == 64  # the recipe's
    assert config.output.store == str(tmp_path / "comparison") and config.output.name == run.name


def test_a_bundled_run_trains_its_recipe_and_takes_the_time_and_folders_given(tmp_path: Path) -> None:
    (run,) = [r for r in plan() if r.name == "synnet_t1_to_flair"]
    config = fit_config(fit_command(run, settings(tmp_path)))
    assert config.output.recipe == "recipes/bundled/synnet_t1_to_flair.toml"
    assert config.budget.max_steps == 4000 and config.budget.time_limit is None  # the recipe's own budget
    assert config.data.extra_data == "../shared/data/brats18_t1_flair"
    config = fit_config(fit_command(run, settings(tmp_path, bundled_seconds=180, extra_data=Path("partial"))))
    assert config.budget.time_limit == 180 and config.data.extra_data == "partial"
    assert all(
        "--extra-data" not in fit_command(r, settings(tmp_path, extra_data=Path("partial")))
        for r in plan()
        if not r.extra_data
    )


def test_every_run_resumes_from_its_last_checkpoint_and_a_set_reaches_every_run(tmp_path: Path) -> None:
    given = settings(tmp_path, assignments=("device=cpu",))
    run = next(r for r in plan() if r.kind == COMPARISON)
    assert fit_config(fit_command(run, given)).runtime.device == "cpu"  # over the GPU recipe's cuda
    (tmp_path / "runs" / run.name).mkdir(parents=True)
    (tmp_path / "runs" / run.name / "last.pt").touch()
    command = fit_command(run, given)
    assert command[3:5] == ["--resume", str(tmp_path / "runs" / run.name / "last.pt")] and "--recipe" not in command
    assert command[-2:] == ["--set", "device=cpu"]


def test_runs_are_selected_by_kind_and_by_where_their_recipe_trains() -> None:
    runs = plan()
    on_gpu = select(runs, "bundled", "cuda")
    assert on_gpu and all(run.kind == BUNDLED and run.device == "cuda" for run in on_gpu)
    assert len(select(runs, "tables")) + len(select(runs, "bundled")) == len(select(runs, "all")) == len(runs)


def test_dry_run_prints_one_fit_per_run(capsys) -> None:
    assert main(["train", "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(plan()) and all(" -m training.fit " in line for line in lines)
    assert main(["tables", "--dry-run"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == len(select(plan(), "tables"))


def test_the_comparison_runs_compute_outlives_their_models(tmp_path: Path) -> None:
    """The steps a manifest recorded go into the record, and are read from it once the model is gone."""
    run = next(r for r in plan() if r.kind == COMPARISON)
    store, record = tmp_path / "store", tmp_path / "compute.csv"
    (store / run.name).mkdir(parents=True)
    manifest = stand_in_manifest(run.name, ",".join(run.src), ",".join(run.dst))
    manifest.model_copy(update={"training": {"steps": 321, "train_seconds": 50.2}}).save(store / run.name)
    assert recorded_compute(store, record)[run.name] == ("321", "50.2")
    shutil.rmtree(store / run.name)
    assert recorded_compute(store, record) == {run.name: ("321", "50.2")}
    assert "321" in record.read_text()


def test_a_summary_is_read_dataset_by_dataset(tmp_path: Path) -> None:
    """Rows of the BraTS 2023 case never stand in for the test cases', nor old summaries' for BraTS 2023's."""
    header = "model,dataset,target,n_cases,psnr_brain_mean,psnr_brain_std"
    (tmp_path / "new.csv").write_text(f"{header}\nm,brats18,T2,4,15.5,1.0\nm,brats23,T2,1,14.0,0.0\n")
    assert read_summary(tmp_path / "new.csv")[("m", "T2")]["psnr_brain_mean"] == 15.5
    assert read_summary(tmp_path / "new.csv", "brats23")[("m", "T2")]["psnr_brain_mean"] == 14.0
    (tmp_path / "old.csv").write_text("model,target,n_cases,psnr_brain_mean,psnr_brain_std\nm,T2,4,15.5,1.0\n")
    assert read_summary(tmp_path / "old.csv")[("m", "T2")]["psnr_brain_mean"] == 15.5
    assert read_summary(tmp_path / "old.csv", "brats23") == {}


def test_the_page_is_what_the_generator_makes_from_the_data_files() -> None:
    compute = recorded_compute(Path("absent store"), RESULTS / "compute.csv")
    assert render(RESULTS / "summary.csv", compute, read_published()) == PAGE.read_text(), (
        f"{PAGE} is stale: python -m experiments.paper report"
    )


def test_the_page_s_numbers_and_sentences_follow_the_summary(tmp_path: Path) -> None:
    summary = (RESULTS / "summary.csv").read_text().splitlines()
    row = next(i for i, line in enumerate(summary) if line.startswith("paper_l2_cnn_t1_to_t2,"))
    header = summary[0].split(",")
    cells = summary[row].split(",")
    cells[header.index("ssim_brain_mean")] = "0.9999"  # the CNN now ranks first on T1 -> T2
    summary[row] = ",".join(cells)
    (tmp_path / "summary.csv").write_text("\n".join(summary) + "\n")
    page = render(tmp_path / "summary.csv", {}, read_published())
    assert "| CM-1 CNN | " in page and "0.9999 ±" in page
    assert "T1→T2: by brain SSIM ours rank CM-1 CNN > " in page
