"""experiments.paper: the plan covers the paper's tables and the bundled models; commands resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from stand_in_manifests import stand_in_manifest

from experiments.paper.__main__ import main
from experiments.paper.plan import BUNDLED, COMPARISON, PAPER_TABLE3, PAPER_TABLE4, Stores, plan
from experiments.paper.report import read_summary, recorded_compute, routing_section
from experiments.paper.train import TrainSettings, fit_command
from synnet.evaluation import ConfigurationScore, EvaluationRecord
from synnet.manifest import ModelManifest, TargetMetrics
from synnet.modalities import Modality, parse_modalities
from training.checkpoint import slim_checkpoint
from training.fitting.cli import build_parser

EVERY = "T1,T1c,T2,FLAIR"
REPO = Path(__file__).resolve().parents[2]


def test_plan_holds_every_paper_cell_and_the_bundled_models() -> None:
    runs = plan()
    names = [run.name for run in runs]
    assert len(names) == len(set(names))
    comparison = [run for run in runs if run.kind == COMPARISON]
    bundled = [run for run in runs if run.kind == BUNDLED]
    assert len(comparison) == 8 + 18 - 2  # Table 3 and 4 share SynNet/L2 for T1→T2 and T2→T1
    assert len(bundled) == 19 and {run.loss for run in bundled} == {"joint_l1"}  # adopted by the ablation
    for run in bundled:  # arm m, its distribution term weighed 10 (arm l) or 30 for some T1c and FLAIR models
        recipe = build_parser().parse_args(["--data", "d", *run.options])  # it parses as fit options
        assert recipe.mask_loss and recipe.intensity_augment and recipe.tumour_weight == 5
        assert recipe.histogram_weight in (3, 10, 30) and recipe.histogram_bands == "0,1,10,50,90,99,100"
    assert {run.options for run in comparison} == {()}  # the paper's recipe, reproducible
    for arch, src, dst, _ in PAPER_TABLE3:
        assert any(r.arch == arch and r.loss == "l2" and r.src == (src,) and r.dst == (dst,) for r in comparison)
    for loss, src, dst, target in PAPER_TABLE4:
        assert any(
            r.arch == "synnet" and r.loss == loss and ",".join(r.src) == src and ",".join(r.dst) == dst
            for r in comparison
        ), (loss, src, dst, target)
    three_to_one = [run for run in bundled if len(run.src) == 3]
    assert {run.dst for run in three_to_one} == {("FLAIR",), ("T2",), ("T1c",), ("T1",)}


def test_fit_command_resumes_from_the_last_checkpoint(tmp_path: Path) -> None:
    settings = TrainSettings(
        data=Path("data"), test_cases="4", runs_dir=tmp_path, stores=Stores(tmp_path / "c", tmp_path / "b"),
        comparison_seconds=50, bundled_seconds=180,
    )  # fmt: skip
    run = next(r for r in plan() if r.kind == BUNDLED)
    command = fit_command(run, settings)
    assert command[command.index("--time-limit") + 1] == "180"
    assert command[command.index("--out") + 1] == str(tmp_path / "b")
    assert "--resume" not in command
    assert command[command.index("--loss") + 1] == "joint_l1" and {"--mask-loss", "--intensity-augment"} <= set(command)
    paper_run = next(r for r in plan() if r.kind != BUNDLED)
    assert "--mask-loss" not in fit_command(paper_run, settings)
    (tmp_path / run.name).mkdir()
    (tmp_path / run.name / "last.pt").touch()
    assert fit_command(run, settings)[-2:] == ["--resume", str(tmp_path / run.name / "last.pt")]


def test_only_the_runs_whose_recipe_has_them_train_on_the_partial_subjects(tmp_path: Path) -> None:
    settings = TrainSettings(
        data=Path("data"), test_cases="4", runs_dir=tmp_path, stores=Stores(tmp_path / "c", tmp_path / "b"),
        comparison_seconds=50, bundled_seconds=180, extra_data=Path("partial"),
    )  # fmt: skip
    with_partial = [run for run in plan() if run.partial_subjects]
    assert {(run.src, run.dst) for run in with_partial} == {(("T1",), ("FLAIR",)), (("FLAIR",), ("T1",))}
    command = fit_command(with_partial[0], settings)
    assert command[command.index("--extra-data") + 1] == "partial"
    assert all("--extra-data" not in fit_command(run, settings) for run in plan() if not run.partial_subjects)


def test_dry_run_prints_one_fit_per_run(capsys) -> None:
    assert main(["train", "--data", "somewhere", "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(plan())
    assert all(" -m training.fit " in line for line in lines)


def test_slim_checkpoint_drops_optimizer_state_and_halves_weights() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    checkpoint = {"format": 1, "config": {}, "model": model.state_dict(), "optimizer": {"x": 1}, "meta": {}}
    slim = slim_checkpoint(checkpoint, half=True)
    assert "optimizer" not in slim
    assert slim["model"]["0.weight"].dtype == torch.float16
    assert slim["model"]["1.num_batches_tracked"].dtype == torch.int64
    restored = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    restored.load_state_dict(slim["model"])
    assert restored[0].weight.dtype == torch.float32
    torch.testing.assert_close(restored[0].weight, model[0].weight, rtol=1e-3, atol=1e-4)


def test_the_routing_table_names_the_model_each_configuration_is_served_by(tmp_path: Path) -> None:
    """The unified model takes T1 -> T2 only where its recorded score is higher; the table shows the winner."""
    for name, src, dst, any_to_any in (("t1_to_t2", "T1", "T2", False), ("unified", EVERY, EVERY, True)):
        folder = tmp_path / name
        folder.mkdir()
        stand_in_manifest(name, src, dst, any_to_any).save(folder)
    EvaluationRecord(targets={Modality.T2: TargetMetrics(psnr_brain=15.5, ssim_brain=0.53)}).save(tmp_path / "t1_to_t2")
    unified_scores = [("T1", "T2", 14.0, 0.50), ("T1c", "T2", 15.0, 0.48), ("T2", "T1", 16.0, 0.6)]
    EvaluationRecord(
        configurations=[
            ConfigurationScore(
                src=parse_modalities(s), target=Modality(t), metrics=TargetMetrics(psnr_brain=p, ssim_brain=v)
            )
            for s, t, p, v in unified_scores
        ]
    ).save(tmp_path / "unified")
    lines = routing_section(tmp_path)
    assert "| T1 | T2 | `t1_to_t2` | 15.50 / 0.530 |" in lines
    assert "| T1c | T2 | `unified` | 15.00 / 0.480 |" in lines
    assert "The unified model serves 24 of the 28, dedicated models the other 4." in lines[2]
    assert len([line for line in lines if line.startswith("| ") and "`" in line]) == 28


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


def test_the_plan_states_the_recipe_each_cpu_trained_bundled_model_was_trained_with() -> None:
    """The bundled models the CPU retrained (the GPU ones predate the recipe) carry the plan's options."""
    checked = 0
    for run in (r for r in plan() if r.kind == BUNDLED):
        training = ModelManifest.load(REPO / "model_store" / run.name).training
        if training["device"] != "cpu":
            continue
        planned = build_parser().parse_args(["--data", "d", *run.options])
        assert training["histogram_weight"] == planned.histogram_weight, run.name
        assert training["tumour_weight"] == planned.tumour_weight and training["loss"] == run.loss, run.name
        assert bool(training["extra_data"]) == run.partial_subjects, run.name
        if run.cpu_steps is not None:  # a step budget of its own (plan.py CPU_STEPS)
            assert training["max_steps"] == training["steps"] == run.cpu_steps, run.name
        checked += 1
    assert checked >= 10


def test_a_summary_is_read_dataset_by_dataset(tmp_path: Path) -> None:
    """Rows of the BraTS 2023 case never stand in for the test cases', nor old summaries' for BraTS 2023's."""
    header = "model,dataset,target,n_cases,psnr_brain_mean,psnr_brain_std"
    (tmp_path / "new.csv").write_text(f"{header}\nm,brats18,T2,4,15.5,1.0\nm,brats23,T2,1,14.0,0.0\n")
    assert read_summary(tmp_path / "new.csv")[("m", "T2")]["psnr_brain_mean"] == 15.5
    assert read_summary(tmp_path / "new.csv", "brats23")[("m", "T2")]["psnr_brain_mean"] == 14.0
    (tmp_path / "old.csv").write_text("model,target,n_cases,psnr_brain_mean,psnr_brain_std\nm,T2,4,15.5,1.0\n")
    assert read_summary(tmp_path / "old.csv")[("m", "T2")]["psnr_brain_mean"] == 15.5
    assert read_summary(tmp_path / "old.csv", "brats23") == {}
