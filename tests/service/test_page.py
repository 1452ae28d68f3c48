"""``GET /``: the viewer page from service/static/ when installed, else a redirect to the docs."""

from __future__ import annotations

import pytest

import service.routes.page as page

pytestmark = pytest.mark.anyio


async def test_root_redirects_to_docs_without_a_page(serve, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(page, "STATIC_DIR", tmp_path / "absent")
    async with serve() as (_, client):
        response = await client.get("/")
    assert response.status_code == 307 and response.headers["location"] == "/docs"


async def test_root_serves_the_static_page(serve, monkeypatch, tmp_path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>synnet</title>")
    (tmp_path / "app.js").write_text("console.log('synnet')")
    monkeypatch.setattr(page, "STATIC_DIR", tmp_path)
    async with serve(api_keys=["k"]) as (_, client):  # the page stays open: it asks for the key itself
        html = await client.get("/")
        script = await client.get("/static/app.js")
    assert html.status_code == 200 and "<title>synnet</title>" in html.text
    assert script.status_code == 200 and "synnet" in script.text
