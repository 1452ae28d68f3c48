"""``synnet serve``, for real: the console script starts the service on the host, port and store it is
given, answers a synthesis over TCP, and stops with exit status 0 on SIGTERM."""

from __future__ import annotations

import base64
import io
import shutil
import signal
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from live_service import live_service

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = shutil.which("synnet", path=str(Path(sys.executable).parent))
MODEL = "synnet_t1_to_t2"


def disc_png(side: int = 64) -> bytes:
    """A bright textured disc on black: a brain-like 8-bit grey slice."""
    rows, cols = np.mgrid[:side, :side]
    disc = (rows - side / 2) ** 2 + (cols - side / 2) ** 2 < (side / 3) ** 2
    pixels = np.where(disc, 120 + 60 * np.sin(rows / 4) * np.cos(cols / 5), 0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.skipif(SCRIPT is None, reason="the console script is installed by pip install -e .")
def test_synnet_serve_serves_the_store_it_is_given_and_stops_on_sigterm(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / MODEL).symlink_to(REPO / "model_store" / MODEL, target_is_directory=True)
    # The environment names no usable store and another port: the flags must win.
    env = {
        "SYNNET_MODEL_STORE": str(tmp_path / "absent"), "SYNNET_PORT": "1", "SYNNET_DEVICE": "cpu",
        "SYNNET_LOG_LEVEL": "info", "SYNNET_TORCH_THREADS": "1",
    }  # fmt: skip

    def command(port: int) -> list[str]:
        return [SCRIPT, "serve", "--host", "127.0.0.1", "--port", str(port), "--model-store", str(store)]

    with live_service(env, tmp_path / "serve.log", ready_timeout_s=120, command=command) as running:
        models = httpx.get(f"{running.url}/models", timeout=10).json()
        assert [m["name"] for m in models["models"]] == [MODEL] and models["configurations"] == ["T1->T2"]
        response = httpx.post(
            f"{running.url}/synthesize", params={"dst": "T2", "format": "npy"},
            files={"T1": ("t1.png", disc_png())}, timeout=60,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        target = response.json()["targets"]["T2"]
        assert target["model"] == MODEL and target["shape"] == [64, 64]
        image = np.load(io.BytesIO(base64.b64decode(target["data"])))
        assert np.isfinite(image).all() and image.std() > 0  # a synthesis, not an empty answer
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=60) == 0
    assert "drained: no synthesis in flight" in (tmp_path / "serve.log").read_text()
