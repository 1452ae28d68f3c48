"""Name → builder registry, so the CLI, the export and the tests treat every network alike.

A builder has the signature ``builder(n_src: int, n_dst: int, *, **hyper) -> nn.Module`` with
keyword-only hyper-parameters that all have defaults; :func:`model_config` reads those defaults so
the manifest records the full architecture, not only what the caller overrode.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

Builder = Callable[..., nn.Module]

_REGISTRY: dict[str, Builder] = {}
_ANY_TO_ANY: set[str] = set()


def register_model(name: str, *, any_to_any: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` under ``name`` (unique).

    ``any_to_any``: the model takes all four modalities plus which are present,
    ``forward(x (B, 4, H, W), present (B, 4))`` (:mod:`training.models.unified`), instead of
    ``forward(x (B, n_src·slices_per_source, H, W))``.
    """

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = builder
        if any_to_any:
            _ANY_TO_ANY.add(name)
        return builder

    return decorate


def is_any_to_any(name: str) -> bool:
    """Whether model ``name`` serves every (src, dst) with an availability input."""
    return name in _ANY_TO_ANY


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def _builder(name: str) -> Builder:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name]


def model_config(name: str, n_src: int, n_dst: int, **kwargs: Any) -> dict[str, Any]:
    """The full architecture description for the manifest: name, k, m and every hyper-parameter.

    Example: ``model_config("synnet", 2, 1)`` → ``{"arch": "synnet", "n_src": 2, "n_dst": 1,
    "features": 64, "depth": 4}``.

    Raises:
        ValueError: unknown name, k or m < 1, or a hyper-parameter the builder does not take.
    """
    builder = _builder(name)
    if n_src < 1 or n_dst < 1:
        raise ValueError(f"n_src and n_dst must be >= 1, got n_src={n_src}, n_dst={n_dst}")
    signature = inspect.signature(builder)
    hyper = {p.name: p.default for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(kwargs) - set(hyper))
    if unknown:
        raise ValueError(f"model {name!r} takes {sorted(hyper)}, got unknown {unknown}")
    hyper.update(kwargs)
    return {"arch": name, "n_src": n_src, "n_dst": n_dst, **hyper}


def create_model(name: str, n_src: int, n_dst: int, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` for ``n_src`` inputs and ``n_dst`` outputs.

    The returned module maps (B, n_src·slices_per_source, H, W) → (B, n_dst, H, W) for any H, W
    (``slices_per_source`` > 1: 2.5D input, :mod:`synnet.neighbours`), and scripts,
    traces and freezes. Its full config is :func:`model_config` of the same arguments.
    """
    config = model_config(name, n_src, n_dst, **kwargs)
    hyper = {k: v for k, v in config.items() if k not in ("arch", "n_src", "n_dst")}
    return _builder(name)(n_src, n_dst, **hyper)
