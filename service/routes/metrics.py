"""``GET /metrics``: Prometheus text exposition of this process's series."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.auth import Authorized
from service.deps import RuntimeDep
from service.schemas import ErrorBody

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={401: {"model": ErrorBody, "description": "API key missing or wrong (only when keys are configured)"}},
)
async def metrics(runtime: RuntimeDep, _: Authorized) -> Response:
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
