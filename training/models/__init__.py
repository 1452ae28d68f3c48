"""Networks for contrast synthesis behind a small registry.

``create_model(name, n_src, n_dst, **kw)`` builds one of :func:`list_models`:
``"synnet"`` (the paper's network), ``"cnn"`` (CM-1), ``"deconvnet"`` (CM-2), ``"unet"`` (CM-3), and
``"unified"`` (one SynNet for every configuration, :func:`is_any_to_any`).
``model_config`` gives the hyper-parameters to record in the manifest.
"""

from __future__ import annotations

# Importing the network modules registers their builders.
from training.models import cnn as _cnn  # noqa: F401
from training.models import deconvnet as _deconvnet  # noqa: F401
from training.models import synnet as _synnet  # noqa: F401
from training.models import unet as _unet  # noqa: F401
from training.models import unified as _unified  # noqa: F401
from training.models.registry import create_model, is_any_to_any, list_models, model_config, register_model

__all__ = ["create_model", "is_any_to_any", "list_models", "model_config", "register_model"]
