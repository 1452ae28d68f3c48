"""Recipes as files: resolution, overrides by --set and flags, refusals that name the problem, the manifest's record."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.fitting.cli import build_parser, make_config, with_recipe
from training.fitting.config import ConfigError
from training.fitting.recipe import load_recipe, options_digest, parse_set


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _config(*argv: str):
    return make_config(with_recipe(vars(build_parser().parse_args(list(argv)))))


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    _write(tmp_path / "base.toml", '[fit]\nfeatures = 16\nlr = 1\noptimizer = "adam"\ntest_cases = ["a", "b"]\n')
    return _write(
        tmp_path / "models" / "t1_to_t2.toml", 'extends = "../base.toml"\n[fit]\nsrc = ["T1"]\ndst = ["T2"]\nlr = 0.5\n'
    )


def test_a_recipe_extends_its_base_and_the_flags_and_set_override_it(recipe: Path) -> None:
    options, digest = load_recipe(recipe)
    assert options == {
        "features": 16,
        "lr": 0.5,
        "optimizer": "adam",
        "test_cases": "a,b",
        "src": ("T1",),
        "dst": ("T2",),
    }
    assert digest == options_digest(dict(reversed(options.items())))  # the digest does not depend on key order
    config = _config("--recipe", str(recipe), "--set", "features=8", "--lr", "0.25")
    assert (config.model.features, config.optim.lr, config.optim.optimizer) == (8, 0.25, "adam")
    assert config.data.test_cases == "a,b" and config.src == ("T1",)
    assert (config.output.recipe, config.output.recipe_sha256) == (str(recipe), digest)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[fit]\nlearning_rate = 0.1\n", "not options of training.fit: learning_rate"),
        ('[fit]\nlr = "fast"\n', "lr must be float, got 'fast'"),
        ("[fit]\nfeatures = 1.5\n", "features must be int"),
        ('[fit]\nout = "store"\n', "out belong to a run"),
        ('extends = "self.toml"\n', "extends itself"),
        ("[fit\n", "not valid TOML"),
        ("[run]\nlr = 1\n", "unknown top-level keys run"),
        ('[fit]\nsrc = ["T1"]\ndst = ["T2"]\noptimizer = "rmsprop"\n', "--optimizer must be one of sgd, adam"),
    ],
)
def test_a_bad_recipe_is_refused_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "self.toml", text)
    with pytest.raises(ConfigError, match=message) as error:
        _config("--recipe", str(path))
    assert "self.toml" in str(error.value) or "--optimizer" in message


def test_set_reads_toml_values_and_names_a_bad_one() -> None:
    assert parse_set(["lr=0.01", 'src=["T1", "T2"]', "loss=joint", "mask-loss=true"]) == {
        "lr": 0.01,
        "src": ("T1", "T2"),
        "loss": "joint",
        "mask_loss": True,
    }
    with pytest.raises(ConfigError, match="--set takes KEY=VALUE"):
        parse_set(["lr"])
    with pytest.raises(ConfigError, match="--set: max_steps must be int"):
        parse_set(["max_steps=many"])


def test_a_missing_recipe_and_a_recipe_on_resume_are_refused(tmp_path: Path, recipe: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        _config("--recipe", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="resumed run keeps"):
        with_recipe({"recipe": str(recipe), "resume": "runs/x/last.pt"})


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_the_manifest_records_the_recipe_and_its_digest(tmp_path: Path, phantom_root: Path) -> None:
    from synnet.manifest import ModelManifest
    from training.fitting.run import run

    recipe = _write(
        tmp_path / "tiny.toml",
        '[fit]\nsrc = ["T1"]\ndst = ["T2"]\nfeatures = 4\ndepth = 2\nslice_size = 32\nbatch_size = 4\nepochs = 1\n'
        "steps_per_epoch = 2\nval_cases = 0\ntest_cases = 1\n",
    )
    config = _config("--recipe", str(recipe), "--data", str(phantom_root), "--out", str(tmp_path / "store"),
                     "--run-dir", str(tmp_path / "run"))  # fmt: skip
    manifest = ModelManifest.load(tmp_path / "store" / run(config).manifest.name)
    assert manifest.training["recipe"] == str(recipe)
    assert manifest.training["recipe_sha256"] == load_recipe(recipe)[1]
    assert manifest.architecture.params["features"] == 4
