"""Liveness and readiness probes (always open, even when API keys are configured)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.deps import RuntimeDep, SettingsDep
from service.schemas import Health, ModelServing, Readiness
from synnet.store import LoadedModel

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz(settings: SettingsDep) -> Health:
    return Health(status="ok", auth_required=settings.auth_enabled)


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: models loaded and at least one serving",
    responses={
        503: {
            "model": Readiness,
            "description": "still loading, no model could be loaded, or draining after SIGTERM (`unavailable`)",
        }
    },
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    store = runtime.store
    if store is None:
        body = Readiness(status="loading", models=[], failed=[])
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "1"})
    failed = [{"name": u.name, "reason": u.reason} for u in store.unavailable]
    serving = len(store) > 0 and not runtime.draining  # a draining replica takes no new work
    body = Readiness(
        status="ready" if serving else "unavailable", models=sorted(store.models), failed=failed,
        load_seconds=runtime.load_seconds, serving=[_serving(store.models[name]) for name in sorted(store.models)],
    )  # fmt: skip
    return JSONResponse(body.model_dump(), status_code=200 if serving else 503)


def _serving(model: LoadedModel) -> ModelServing:
    serving, compiled = model.serving, model.serving.compiled
    return ModelServing(
        name=model.name, format=serving.model_format, precision=serving.precision, compiled=compiled is not None,
        load_seconds=round(serving.load_seconds, 2), compile_seconds=round(compiled.seconds, 2) if compiled else None,
        compiled_graphs=compiled.warmup_graphs if compiled else None,
        recompilations=compiled.recompilations if compiled else None, notes=serving.notes,
    )  # fmt: skip
