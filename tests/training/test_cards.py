"""Model cards and the results page (python -m training.cards): the committed ones are what the generator
makes from the bundled store, they say which subjects did what, and the command finds stale files."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from synnet.model_card import CARD_FILE
from training.cards.__main__ import generate, main, stale
from training.cards.reference import REFERENCE_FILE
from training.cards.results_page import RESULTS_PAGE, summary
from training.cards.served import read_store, served

REPO = Path(__file__).resolve().parents[2]
STORE = REPO / "model_store"
COMMAND = "python -m training.cards"
VALIDATION = ["Brats18_CBICA_ABM_1", "Brats18_TCIA03_265_1", "Brats18_TCIA10_637_1", "Brats18_TCIA10_639_1"]


@pytest.fixture(scope="module")
def committed() -> dict[Path, str]:
    return generate(STORE, REPO / RESULTS_PAGE, REPO / REFERENCE_FILE)


def test_the_committed_cards_and_results_page_are_what_the_generator_makes(committed: dict[Path, str]) -> None:
    assert len([p for p in committed if p.name == CARD_FILE]) == len(list(STORE.glob("*/manifest.json")))
    outdated = [str(path.relative_to(REPO)) for path in stale(committed)]
    assert not outdated, f"stale: {', '.join(outdated)}; run `{COMMAND}` (with --data ../shared/data for the figures)"


def test_the_readme_quotes_the_results_page() -> None:
    sentence = summary(served(read_store(STORE)))
    readme = " ".join((REPO / "README.md").read_text().split())
    assert sentence in readme, f"README's quality paragraph should quote docs/results.md: {sentence}"


def test_a_card_says_which_subjects_did_what_and_never_calls_validation_a_test(committed: dict[Path, str]) -> None:
    card = committed[STORE / "synnet_t1_to_t2" / CARD_FILE]
    subjects = card.split("## Which subjects did what")[1].split("## Scores")[0]
    validation = next(line for line in subjects.splitlines() if line.startswith("- **Validation**"))
    assert all(case in validation for case in VALIDATION) and "routing" in validation
    test = next(line for line in subjects.splitlines() if line.startswith("- **Test**"))
    assert not any(case in test for case in VALIDATION) and "BraTS-EXT-00000-000" in test
    assert "| T1 → T2 | validation, BraTS 2018 | 4 |" in card
    assert "| T1 → T2 | test, BraTS 2023 | 1 |" in card
    assert "Not for diagnosis or treatment decisions" in card and "(card.png)" in card
    for text in committed.values():
        assert not re.search(r"held[- ]out test", text, re.IGNORECASE)


def test_the_partial_subjects_are_test_data_only_for_models_that_never_trained_on_them() -> None:
    for model in read_store(STORE):
        trained_on = set(model.manifest.training_data.train_cases)
        for name, block in (model.evaluation.test if model.evaluation else {}).items():
            assert not trained_on & set(block.cases), (model.name, name)
    unified = next(m for m in read_store(STORE) if m.manifest.any_to_any)
    assert unified.evaluation is not None and "brats18_t1_flair" in unified.evaluation.test
    t1_to_flair = next(m for m in read_store(STORE) if m.name == "synnet_t1_to_flair")
    assert t1_to_flair.evaluation is not None and "brats18_t1_flair" not in t1_to_flair.evaluation.test


def test_the_command_finds_a_stale_card_and_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    for name in ("synnet_t1_to_t2", "synnet_t2_to_t1"):
        shutil.copytree(STORE / name, store / name)
    results = tmp_path / "results.md"
    argv = ["--store", str(store), "--results", str(results), "--reference", str(REPO / REFERENCE_FILE)]
    assert main([*argv, "--check"]) == 1  # two models route differently from the whole store: other cards
    assert f"run: {COMMAND}" in capsys.readouterr().err
    assert main(argv) == 0
    assert main([*argv, "--check"]) == 0
    record = json.loads((store / "synnet_t1_to_t2" / "evaluation.json").read_text())
    record["targets"]["T2"]["psnr_brain"] = 99.0
    (store / "synnet_t1_to_t2" / "evaluation.json").write_text(json.dumps(record))
    assert main([*argv, "--check"]) == 1
    err = capsys.readouterr().err
    assert f"stale: {store / 'synnet_t1_to_t2' / CARD_FILE}" in err and f"stale: {results}" in err
    assert "99.00" in generate(store, None, REPO / REFERENCE_FILE)[store / "synnet_t1_to_t2" / CARD_FILE]


def test_the_command_names_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", str(tmp_path / "absent"), "--check"]) == 2
    assert f"model store {tmp_path / 'absent'} is not a folder" in capsys.readouterr().err
    assert main(["--store", str(STORE), "--data", str(tmp_path / "no_data"), "--no-results"]) == 2
    assert "--data" in capsys.readouterr().err
