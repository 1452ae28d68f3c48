"""``Annotated`` dependency aliases that routes declare to get what they need."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.errors import NotReadyError
from service.runtime import Runtime
from synnet.settings import Settings


def app_settings(request: Request) -> Settings:
    """The settings this app was built with (override in tests via ``app.dependency_overrides``)."""
    return request.app.state.settings


def app_runtime(request: Request) -> Runtime:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:  # only before the lifespan has started
        raise NotReadyError("the service is starting")
    return runtime


SettingsDep = Annotated[Settings, Depends(app_settings)]
RuntimeDep = Annotated[Runtime, Depends(app_runtime)]
