"""``GET /models``: what this service can synthesize."""

from __future__ import annotations

from fastapi import APIRouter

from service.auth import Authorized
from service.deps import RuntimeDep
from service.schemas import ConfigurationRoute, ErrorBody, FailedModel, ModelsResponse, TargetRoute
from synnet.evaluation import EvaluationRecord
from synnet.routing import available_configurations, served_configurations
from synnet.store import LoadedModel, ModelStore

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
        models=[describe(model) for model in store],
        configurations=available_configurations(store.manifests),
        routes=routes(store),
        unavailable=[FailedModel(name=u.name, reason=u.reason) for u in store.unavailable],
    )


def describe(model: LoadedModel) -> dict[str, object]:
    """The manifest without internals, plus the held-out scores of its ``evaluation.json`` (empty when none)."""
    evaluation = model.evaluation or EvaluationRecord()
    scores = evaluation.model_dump(mode="json")["targets"]
    return {**model.manifest.public(), "evaluation": scores, "evaluation_data": evaluation.data}


def routes(store: ModelStore) -> list[ConfigurationRoute]:
    """Every configuration the store serves, with the model (and its compared score) per target."""
    return [
        ConfigurationRoute(
            configuration=c.configuration,
            src=[m.value for m in c.src],
            dst=[m.value for m in c.dst],
            targets={t.value: TargetRoute(model=name, score=score) for t, (name, score) in c.targets.items()},
        )
        for c in served_configurations(store.manifests, store.evaluations)
    ]
