"""training.paper: the plan covers the paper's tables and the bundled models; commands resume."""

from __future__ import annotations

from pathlib import Path

import torch

from training.checkpoint import slim_checkpoint
from training.fitting.cli import build_parser
from training.paper.__main__ import main
from training.paper.plan import BUNDLED, COMPARISON, PAPER_TABLE3, PAPER_TABLE4, Stores, plan
from training.paper.train import TrainSettings, fit_command


def test_plan_holds_every_paper_cell_and_ten_bundled_models() -> None:
    runs = plan()
    names = [run.name for run in runs]
    assert len(names) == len(set(names))
    comparison = [run for run in runs if run.kind == COMPARISON]
    bundled = [run for run in runs if run.kind == BUNDLED]
    assert len(comparison) == 8 + 18 - 2  # Table 3 and 4 share SynNet/L2 for T1→T2 and T2→T1
    assert len(bundled) == 10 and {run.loss for run in bundled} == {"joint_l1"}  # adopted by the ablation
    assert len({run.options for run in bundled}) == 1  # one recipe for every bundled model
    recipe = build_parser().parse_args(["--data", "d", *bundled[0].options])  # it parses as fit options
    assert recipe.mask_loss and recipe.intensity_augment and recipe.tumour_weight == 5  # ablation arm m
    assert recipe.histogram_weight == 3
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
