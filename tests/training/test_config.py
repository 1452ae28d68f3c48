"""Fit settings: defaults from the dataclass, checks with the offending value, resume rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synnet.errors import SynnetError, UnknownModalityError
from training.fitting.cli import RESUMABLE, build_parser, make_config
from training.fitting.config import ConfigError, FitConfig


def _config(*argv: str, base=None):
    return make_config(vars(build_parser().parse_args(list(argv))), base)


def test_defaults_are_the_papers_and_aliases_are_canonicalized() -> None:
    config = _config("--src", "t1,T1CE", "--dst", "flair")
    assert (config.src, config.dst) == (("T1", "T1c"), ("FLAIR",))
    optim = config.optim
    assert (optim.optimizer, optim.lr, optim.momentum, optim.weight_decay, optim.batch_size) == (
        "sgd",
        0.01,
        0.9,
        1e-4,
        32,
    )
    assert config.output.name == "synnet_t1-t1c_to_flair" and config.output.run_dir == "runs/synnet_t1-t1c_to_flair"


@pytest.mark.parametrize(
    ("argv", "error", "message"),
    [
        (("--src", "T1,T9", "--dst", "T2"), UnknownModalityError, "unknown modality 'T9'"),
        (("--src", "T1,T2", "--dst", "T2"), SynnetError, "overlap on T2"),
        (("--dst", "T2"), ConfigError, "--src and --dst are required"),
        (("--src", "T1", "--dst", "T2", "--slice-size", "8"), ConfigError, "got 8"),
        (("--src", "T1", "--dst", "T2", "--loss", "l2", "--lambdas", "1,2,3"), ConfigError, "joint losses only"),
        (("--src", "T1", "--dst", "T2", "--lambdas", "1,2"), ConfigError, "three"),
        (("--src", "T1", "--dst", "T2", "--name", "../evil"), ConfigError, "--name"),
    ],
)
def test_bad_options_name_the_value(argv, error, message) -> None:
    with pytest.raises(error, match=message):
        _config(*argv)


def test_resume_takes_saved_settings_and_allows_only_session_options() -> None:
    saved = _config("--src", "T1", "--dst", "T2", "--lr", "0.05", "--epochs", "3")
    resumed = _config("--epochs", "9", base=saved)
    assert (resumed.optim.lr, resumed.budget.epochs, resumed.src) == (0.05, 9, ("T1",))
    assert _config("--src", "t1", "--lr", "0.05", base=saved).optim.lr == 0.05  # same values are fine
    with pytest.raises(ConfigError, match="--lr differ"):
        _config("--lr", "0.1", base=saved)
    with pytest.raises(ConfigError, match="--dst differ"):
        _config("--dst", "FLAIR", base=saved)


def test_a_resumed_run_refuses_another_subject_split() -> None:
    from training.fitting.run import check_same_split

    split = {"source": "d", "train_cases": ["a", "b"], "val_cases": ["c"], "test_cases": []}
    resume = {"meta": {"manifest": {"training_data": split}}}
    check_same_split(resume, {"training_data": dict(split)})
    with pytest.raises(ConfigError, match="another subject split"):
        check_same_split(resume, {"training_data": {**split, "train_cases": ["a"], "val_cases": ["b"]}})


def test_every_option_is_a_field_of_one_group_and_the_flat_record_round_trips() -> None:
    # --set's assignments become options; the recipe's digest is recorded, never given
    dests = {a.dest for a in build_parser()._actions if a.dest not in ("help", "resume", "assignments")}
    config = _config("--src", "T1", "--dst", "T2", "--data", "somewhere", "--out", "store", "--lambdas", "1,2,3")
    flat = config.to_json()
    assert set(flat) - {"recipe_sha256"} == dests and dests >= RESUMABLE
    assert (config.data.folder, config.output.store, config.model.lambdas) == ("somewhere", "store", (1.0, 2.0, 3.0))
    assert FitConfig.from_json(flat) == config
    with pytest.raises(ConfigError, match="unknown settings nope"):
        config.with_options(nope=1)


@pytest.mark.parametrize("manifest", sorted(Path(__file__).parents[2].glob("model_store/*/manifest.json")), ids=str)
def test_the_bundled_manifests_training_record_reads_back_unchanged(manifest: Path) -> None:
    recorded = json.loads(manifest.read_text())
    flat = {**recorded["training"], "src": recorded["src"], "dst": recorded["dst"]}
    config = FitConfig.from_json(flat)  # run-record keys (steps, history...) are ignored
    assert config.src == tuple(recorded["src"]) and config.budget.time_limit == flat["time_limit"]
    written = json.loads(json.dumps(config.to_json()))  # as a manifest stores it: tuples become lists
    defaults = FitConfig().to_json()  # options added after these models were trained take their defaults
    expected = {k: flat.get(k, defaults[k]) for k in written}
    assert all(written[k] == expected[k] for k in written if k not in ("src", "dst", "name", "model_version"))
