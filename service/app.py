"""The application factory: ``create_app(settings)`` builds a FastAPI app; its lifespan holds the models.

Nothing happens at import time. ``python -m service`` (see ``__main__``) calls the factory with
the environment's settings; tests call it with their own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import synnet
from service.errors import install_error_handlers
from service.middleware import BodyLimitMiddleware, RequestContextMiddleware
from service.observability import ServiceMetrics
from service.routes import health, metrics, models, page, synthesize
from service.runtime import Runtime
from synnet.settings import Settings, get_settings

logger = logging.getLogger(__name__)

DESCRIPTION = """
Synthesize missing brain-MRI contrasts (T1, T1c, T2, FLAIR) with SynNet.

Upload the sources you have to `POST /synthesize?src=T1&dst=T2` as a multipart form, one file
part per modality (NIfTI volume or 2D NIfTI/PNG). The answer is JSON with the synthesized
image(s) base64-encoded in the input's format — or, for one target, the file itself
(`Accept: application/octet-stream` or `download=1`). Send `truth_<target>` parts to get PSNR
and SSIM. Errors are always `{"error": code, "detail": message}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service app.

    Args:
        settings: configuration; defaults to :func:`synnet.settings.get_settings` (the environment).
    """
    settings = settings or get_settings()
    service_metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(app.state.settings, service_metrics)
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            app.state.runtime = None

    app = FastAPI(
        title="synnet",
        version=synnet.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = None
    install_error_handlers(app)
    for module in (health, models, synthesize, metrics, page):
        app.include_router(module.router)
    page.mount_static(app)
    # Added last = outermost: the request context sees every response, the 413s included.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=service_metrics)
    return app
