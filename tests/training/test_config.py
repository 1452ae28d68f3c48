"""Fit settings: defaults from the dataclass, checks with the offending value, resume rules."""

from __future__ import annotations

import pytest

from synnet.errors import SynnetError, UnknownModalityError
from training.fitting.config import ConfigError, build_parser, make_config


def _config(*argv: str, base=None):
    return make_config(vars(build_parser().parse_args(list(argv))), base)


def test_defaults_are_the_papers_and_aliases_are_canonicalized() -> None:
    config = _config("--src", "t1,T1CE", "--dst", "flair")
    assert (config.src, config.dst) == (("T1", "T1c"), ("FLAIR",))
    assert (config.optimizer, config.lr, config.momentum, config.weight_decay, config.batch_size) == (
        "sgd",
        0.01,
        0.9,
        1e-4,
        32,
    )
    assert config.name == "synnet_t1-t1c_to_flair" and config.run_dir == "runs/synnet_t1-t1c_to_flair"


@pytest.mark.parametrize(
    ("argv", "error", "message"),
    [
        (("--src", "T1,T9", "--dst", "T2"), UnknownModalityError, "unknown modality 'T9'"),
        (("--src", "T1,T2", "--dst", "T2"), SynnetError, "overlap on T2"),
        (("--dst", "T2"), ConfigError, "--src and --dst are required"),
        (("--src", "T1", "--dst", "T2", "--slice-size", "8"), ConfigError, "got 8"),
        (("--src", "T1", "--dst", "T2", "--loss", "l2", "--lambdas", "1,2,3"), ConfigError, "joint only"),
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
    assert (resumed.lr, resumed.epochs, resumed.src) == (0.05, 9, ("T1",))
    assert _config("--src", "t1", "--lr", "0.05", base=saved).lr == 0.05  # same values are fine
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
