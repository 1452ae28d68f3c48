"""``GET /models``: what this service can synthesize; ``GET /models/{name}``: one model and its card."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from service.auth import Authorized
from service.deps import RuntimeDep
from service.schemas import (
    ConfigurationRoute,
    ErrorBody,
    FailedModel,
    ModelCardBody,
    ModelDetail,
    ModelsResponse,
    TargetRoute,
)
from synnet.errors import SynnetError
from synnet.evaluation import EvaluationRecord
from synnet.model_card import ModelCard
from synnet.routing import available_configurations, served_configurations
from synnet.store import LoadedModel, ModelStore

router = APIRouter(tags=["models"])
NOT_FOUND = {404: {"model": ErrorBody, "description": "no such model (`unknown_model`) or no figure (`no_figure`)"}}


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


@router.get(
    "/models/{name}",
    response_model=ModelDetail,
    summary="One served model: manifest, validation and test scores, the configurations it serves, its card",
    responses={401: {"model": ErrorBody}, 503: {"model": ErrorBody}, **NOT_FOUND},
)
async def model_detail(name: str, runtime: RuntimeDep, _: Authorized) -> ModelDetail:
    store = runtime.require_store()
    model = served_model(store, name)
    card = ModelCard.read(runtime.settings.model_store / name)
    return ModelDetail(
        name=name,
        manifest=model.manifest.public(),
        evaluation=model.evaluation.model_dump(mode="json") if model.evaluation else None,
        serves=[r for r in routes(store) if any(t.model == name for t in r.targets.values())],
        card=None if card is None else ModelCardBody(
            markdown=card.markdown, figure_url=f"/models/{name}/card.png" if card.figure else None
        ),
    )  # fmt: skip


@router.get(
    "/models/{name}/card.png",
    response_class=FileResponse,
    summary="The figure of a model's card",
    responses={200: {"content": {"image/png": {}}}, 401: {"model": ErrorBody}, 503: {"model": ErrorBody}, **NOT_FOUND},
)
async def card_figure(name: str, runtime: RuntimeDep, _: Authorized) -> FileResponse:
    served_model(runtime.require_store(), name)
    card = ModelCard.read(runtime.settings.model_store / name)
    if card is None or card.figure is None:
        message = f"model {name!r} has no card figure (python -m training.cards --data draws it)"
        raise SynnetError(message, code="no_figure")
    return FileResponse(card.figure, media_type="image/png")


def served_model(store: ModelStore, name: str) -> LoadedModel:
    """The served model called ``name``; ``unknown_model`` (404) naming what is served otherwise."""
    if name not in store.models:
        why = next((f": it is unavailable ({u.reason})" for u in store.unavailable if u.name == name), "")
        served = ", ".join(sorted(store.models)) or "none"
        raise SynnetError(f"no served model {name!r}{why}; served models: {served}", code="unknown_model")
    return store.models[name]


def describe(model: LoadedModel) -> dict[str, object]:
    """The manifest without internals, plus the validation scores of its ``evaluation.json`` (empty when none)."""
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
