"""``GET /models``: what this service can synthesize."""

from __future__ import annotations

from fastapi import APIRouter

from service.auth import Authorized
from service.deps import RuntimeDep
from service.routing import available_configurations
from service.schemas import ErrorBody, FailedModel, ModelsResponse

router = APIRouter(tags=["models"])


@router.get(
    "/models",
    response_model=ModelsResponse,
    summary="Served models (manifests without internals) and their configurations",
    responses={401: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def list_models(runtime: RuntimeDep, _: Authorized) -> ModelsResponse:
    store = runtime.require_store()
    return ModelsResponse(
        models=[m.public() for m in store.manifests],
        configurations=available_configurations(store.manifests),
        unavailable=[FailedModel(name=u.name, reason=u.reason) for u in store.unavailable],
    )
