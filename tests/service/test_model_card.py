"""GET /models/{name} and the card's figure against a real ``python -m service`` on 127.0.0.1: the session's
tiny models with the cards ``python -m training.cards`` made for them (the figure drawn from a phantom case
standing in for BraTS 2023), beside a bundled model with its committed card and scores."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from live_service import LiveService, live_service

REPO = Path(__file__).resolve().parents[2]
BUNDLED = "synnet_t1_to_t2"
KEY = "card-key"
HEADERS = {"X-API-Key": KEY}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def carded_store(store: Path, phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained store with cards (``t1_t1c_to_flair``'s figure removed), then a bundled model as committed."""
    root = tmp_path_factory.mktemp("carded")
    carded = root / "store"
    shutil.copytree(store, carded)
    brats23 = root / "data" / "brats23"
    brats23.mkdir(parents=True)
    case = sorted(p for p in phantom_root.iterdir() if p.is_dir())[0]
    (brats23 / case.name).symlink_to(case, target_is_directory=True)
    command = [sys.executable, "-m", "training.cards", "--store", str(carded), "--no-results"]
    command += ["--data", str(brats23.parent)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (carded / "t1_t1c_to_flair" / "card.png").unlink()
    shutil.copytree(REPO / "model_store" / BUNDLED, carded / BUNDLED)
    return carded


@pytest.fixture(scope="module")
def server(carded_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    env = {"SYNNET_MODEL_STORE": str(carded_store), "SYNNET_DEVICE": "cpu", "SYNNET_API_KEYS": KEY}
    with live_service(env, tmp_path_factory.mktemp("card_service") / "service.log", ready_timeout_s=90) as running:
        yield running


def test_a_trained_model_shows_its_generated_card_and_figure(server: LiveService, carded_store: Path) -> None:
    answer = httpx.get(f"{server.url}/models/t1_to_t2", headers=HEADERS, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["name"] == "t1_to_t2" and body["manifest"]["src"] == ["T1"] and body["evaluation"] is None
    card = (carded_store / "t1_to_t2" / "README.md").read_text()
    assert body["card"]["markdown"] == card and "# t1_to_t2: T2 from T1" in card
    assert body["card"]["figure_url"] == "/models/t1_to_t2/card.png"
    figure = httpx.get(f"{server.url}{body['card']['figure_url']}", headers=HEADERS, timeout=30)
    assert figure.status_code == 200 and figure.headers["content-type"] == "image/png"
    assert figure.content == (carded_store / "t1_to_t2" / "card.png").read_bytes()
    assert figure.content.startswith(b"\x89PNG") and len(figure.content) > 5000


def test_the_configurations_a_model_serves_are_its_routes(server: LiveService) -> None:
    routes = httpx.get(f"{server.url}/models", headers=HEADERS, timeout=30).json()["routes"]
    for name in ("t1_to_t2", "t1_t1c_to_flair", BUNDLED):
        serves = httpx.get(f"{server.url}/models/{name}", headers=HEADERS, timeout=30).json()["serves"]
        assert serves == [r for r in routes if any(t["model"] == name for t in r["targets"].values())]
    flair = httpx.get(f"{server.url}/models/t1_t1c_to_flair", headers=HEADERS, timeout=30).json()["serves"]
    assert "T1,T1c->FLAIR" in [r["configuration"] for r in flair]


def test_a_bundled_model_shows_its_committed_card_and_scores(server: LiveService) -> None:
    body = httpx.get(f"{server.url}/models/{BUNDLED}", headers=HEADERS, timeout=30).json()
    folder = REPO / "model_store" / BUNDLED
    assert body["card"]["markdown"] == (folder / "README.md").read_text()
    assert "## Which subjects did what" in body["card"]["markdown"]
    evaluation = body["evaluation"]
    assert evaluation["data"]["cases"] == body["manifest"]["training_data"]["test_cases"]  # validation subjects
    assert evaluation["targets"]["T2"]["psnr_brasyn"] is not None
    assert evaluation["test"]["brats23"]["targets"]["T2"]["ssim_brain"] is not None
    figure = httpx.get(f"{server.url}/models/{BUNDLED}/card.png", headers=HEADERS, timeout=30)
    assert figure.content == (folder / "card.png").read_bytes()


def test_unknown_models_and_missing_figures_are_404s_that_say_so(server: LiveService) -> None:
    for path in ("/models/nope", "/models/nope/card.png"):
        answer = httpx.get(f"{server.url}{path}", headers=HEADERS, timeout=30)
        assert answer.status_code == 404 and answer.json()["error"] == "unknown_model"
        assert "no served model 'nope'" in answer.json()["detail"] and "t1_to_t2" in answer.json()["detail"]
    body = httpx.get(f"{server.url}/models/t1_t1c_to_flair", headers=HEADERS, timeout=30).json()
    assert body["card"]["figure_url"] is None and body["card"]["markdown"].startswith("---")
    answer = httpx.get(f"{server.url}/models/t1_t1c_to_flair/card.png", headers=HEADERS, timeout=30)
    assert answer.status_code == 404 and answer.json()["error"] == "no_figure"
    assert "t1_t1c_to_flair" in answer.json()["detail"]


def test_the_card_needs_the_key_like_the_other_model_routes(server: LiveService) -> None:
    for path in ("/models/t1_to_t2", "/models/t1_to_t2/card.png"):
        answer = httpx.get(f"{server.url}{path}", timeout=30)
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
