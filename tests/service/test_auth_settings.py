"""Optional API-key auth and settings from the environment."""

from __future__ import annotations

import pytest

from synnet.settings import Settings, get_settings

pytestmark = pytest.mark.anyio


async def test_keys_protect_everything_but_the_probes(serve, case, kit) -> None:
    files = {"T1": ("t1.png", kit.png_bytes(case["T1"].array[:, :, 77]))}
    params = {"src": "T1", "dst": "T2"}
    async with serve(api_keys=["alpha", "beta"]) as (_, client):
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        docs = await client.get("/openapi.json")
        missing = await client.post("/synthesize", params=params, files=files)
        wrong = await client.post("/synthesize", params=params, files=files, headers={"X-API-Key": "gamma"})
        right = await client.post("/synthesize", params=params, files=files, headers={"X-API-Key": "beta"})
        models = [await client.get("/models", headers=h) for h in ({}, {"X-API-Key": "alpha"})]
        metrics = [await client.get("/metrics", headers=h) for h in ({}, {"X-API-Key": "alpha"})]
    assert health.status_code == 200 and health.json()["auth_required"] is True
    assert ready.status_code == 200 and docs.status_code == 200
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    assert "X-API-Key" in missing.json()["detail"] and missing.headers["www-authenticate"].startswith("APIKey")
    assert wrong.status_code == 401 and "not hold a valid API key" in wrong.json()["detail"]
    assert right.status_code == 200
    assert [r.status_code for r in models] == [401, 200] and [r.status_code for r in metrics] == [401, 200]
    assert "X-API-Key" in str(docs.json()["components"]["securitySchemes"])


async def test_auth_is_off_without_keys(serve) -> None:
    async with serve() as (_, client):
        assert (await client.get("/healthz")).json()["auth_required"] is False
        assert (await client.get("/models")).status_code == 200


def test_settings_come_from_synnet_env_vars(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SYNNET_MODEL_STORE", str(tmp_path))
    monkeypatch.setenv("SYNNET_PORT", "9123")
    monkeypatch.setenv("SYNNET_API_KEYS", "one, two,")
    monkeypatch.setenv("SYNNET_MAX_BATCH_DELAY_S", "0.02")
    monkeypatch.setenv("SYNNET_DEVICE", "cpu")
    settings = Settings()
    assert settings.model_store == tmp_path and settings.port == 9123 and settings.device == "cpu"
    assert settings.api_keys == ["one", "two"] and settings.auth_enabled and settings.max_batch_delay_s == 0.02
    monkeypatch.setenv("SYNNET_DEVICE", "tpu")
    with pytest.raises(ValueError, match="device"):
        Settings()


def test_batch_size_default_depends_on_the_device() -> None:
    assert Settings().batch_size_for("cpu") == 4 and Settings().batch_size_for("cuda") == 32
    assert Settings(max_batch_size=8).batch_size_for("cpu") == 8


def test_get_settings_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    try:
        monkeypatch.setenv("SYNNET_MAX_BATCH_SIZE", "8")
        first = get_settings()
        assert first.max_batch_size == 8  # read from the environment
        monkeypatch.setenv("SYNNET_MAX_BATCH_SIZE", "16")
        assert get_settings() is first and first.max_batch_size == 8  # not read again
        get_settings.cache_clear()
        assert get_settings().max_batch_size == 16  # until the cache is cleared, as a test may do
    finally:
        get_settings.cache_clear()


async def test_settings_dependency_can_be_overridden(serve) -> None:
    from service.deps import app_settings

    async with serve() as (app, client):
        app.dependency_overrides[app_settings] = lambda: Settings(api_keys=["override"])
        assert (await client.get("/healthz")).json()["auth_required"] is True
        assert (await client.get("/models")).status_code == 401
