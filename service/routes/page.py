"""``GET /``: the web viewer's page, served from ``service/static/`` when it is installed.

The page and its assets are static files (no build step at run time). Without them, ``/``
redirects to the API docs, so the root URL is never a dead end.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> Response:
    page = STATIC_DIR / "index.html"
    if page.is_file():
        return FileResponse(page, media_type="text/html")
    return RedirectResponse("/docs")


def mount_static(app: FastAPI) -> None:
    """Serve ``service/static/*`` under ``/static`` when the folder exists."""
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
