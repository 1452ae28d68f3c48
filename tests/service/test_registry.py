"""Loading the model store: broken models are reported unavailable and never stop the others; readiness."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest
import torch

import service.runtime
from service.app import create_app
from synnet.store import ModelStore, StoreError, resolve_device

pytestmark = pytest.mark.anyio


def test_broken_models_are_unavailable_with_their_reason(broken_store) -> None:
    store = ModelStore.load(broken_store, torch.device("cpu"))
    assert sorted(store.models) == ["t1_t1c_to_flair", "t1_to_t2"]
    reasons = {u.name: u.reason for u in store.unavailable}
    assert set(reasons) == {"zz_bad_sha", "zz_bad_manifest", "zz_edited", "zz_mismatch", "zz_no_manifest"}
    assert reasons["zz_bad_sha"].startswith("sha256 mismatch")
    assert reasons["zz_edited"].startswith("sha256 mismatch") and "output reference" in reasons["zz_edited"]
    assert reasons["zz_no_manifest"] == "no manifest.json in zz_no_manifest/ (every model folder needs one)"
    assert reasons["zz_bad_manifest"].startswith("invalid manifest")
    assert "warm-up forward failed for input (1, 2, 32, 32)" in reasons["zz_mismatch"]


def test_missing_store_and_missing_cuda() -> None:
    store = ModelStore.load(Path("/nonexistent/store"), torch.device("cpu"))
    assert len(store) == 0 and store.unavailable[0].reason == "model store folder /nonexistent/store not found"
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(StoreError, match="no CUDA device"):
            resolve_device("cuda")


async def test_broken_models_are_listed_while_the_others_serve(serve, broken_store, case, kit) -> None:
    async with serve(model_store=broken_store) as (_, client):
        ready = await client.get("/readyz")
        models = (await client.get("/models")).json()
        served = await client.post(
            "/synthesize", params={"src": "T1", "dst": "T2"},
            files={"T1": ("t1.png", kit.png_bytes(case["T1"].array[:, :, 77]))},
        )
        metrics = (await client.get("/metrics")).text
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["models"] == ["t1_t1c_to_flair", "t1_to_t2"]
    broken = ["zz_bad_manifest", "zz_bad_sha", "zz_edited", "zz_mismatch", "zz_no_manifest"]
    assert [f["name"] for f in body["failed"]] == broken
    assert all(f["reason"] for f in body["failed"])
    assert models["configurations"] == ["T1,T1c->FLAIR", "T1->T2"]
    assert [u["name"] for u in models["unavailable"]] == broken
    assert served.status_code == 200
    assert "synnet_models_failed 5.0" in metrics and "synnet_models_available 2.0" in metrics


async def test_readyz_is_503_until_the_models_are_loaded(store, monkeypatch, case, kit) -> None:
    release = threading.Event()
    real_load = ModelStore.load

    def held_load(*args, **kwargs):  # the real loader, held back until the test has looked
        release.wait(timeout=30)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(service.runtime.ModelStore, "load", held_load)
    files = {"T1": ("t1.png", kit.png_bytes(case["T1"].array[:, :, 77]))}
    app = create_app(kit.settings_for(store))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        loading = await client.get("/readyz")
        alive = await client.get("/healthz")
        early = await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files=files)
        release.set()
        await asyncio.wait_for(app.state.runtime.ready.wait(), timeout=30)
        ready = await client.get("/readyz")
    assert loading.status_code == 503 and loading.json()["status"] == "loading"
    assert loading.headers["retry-after"] == "1"
    assert alive.status_code == 200 and alive.json() == {"status": "ok", "auth_required": False}
    assert early.status_code == 503 and early.json()["error"] == "not_ready" and early.headers["retry-after"]
    assert ready.status_code == 200


async def test_no_model_at_all_is_not_ready(serve, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    async with serve(model_store=tmp_path / "empty") as (_, client):
        ready = await client.get("/readyz")
        response = await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files={"T1": ("a.png", b"x")})
    body = ready.json()
    assert ready.status_code == 503 and body.pop("load_seconds") >= 0
    assert body == {"status": "unavailable", "models": [], "failed": [], "serving": []}
    assert response.status_code == 404 and response.json()["available"] == []
