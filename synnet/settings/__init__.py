"""Every ``SYNNET_*`` setting the product reads, in one object grouped by concern.

:class:`Settings` is the union of the groups in :mod:`synnet.settings.groups`; the service reads it
whole, once per process (:func:`get_settings`), while the Python API and the ``synnet`` command
read only the group they need (:func:`read`), so a bad value in a setting they do not use does
not stop them. A bad value is a :class:`SettingsError` naming the variable. The docs' tables
of settings are generated from these classes (``python -m synnet.settings --write``), and
``tests/test_settings_docs.py`` fails when the docs, or a ``SYNNET_*`` name used anywhere in the
product, the images or Compose, drift from them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TypeVar

from pydantic import ValidationError

from synnet.settings.errors import SettingsError, env_name, settings_error
from synnet.settings.groups import (
    AuthSettings,
    BatchingSettings,
    LimitsSettings,
    ServerSettings,
    ServingSettings,
    SettingsGroup,
    StoreSettings,
    SynthesisSettings,
    default_decoded_budget,
)

__all__ = [
    "GROUPS",
    "AuthSettings",
    "BatchingSettings",
    "LimitsSettings",
    "ServerSettings",
    "ServingSettings",
    "Settings",
    "SettingsError",
    "SettingsGroup",
    "StoreSettings",
    "SynthesisSettings",
    "default_decoded_budget",
    "env_name",
    "get_settings",
    "read",
]

# In the order the docs list them.
GROUPS: tuple[type[SettingsGroup], ...] = (
    StoreSettings,
    ServingSettings,
    SynthesisSettings,
    BatchingSettings,
    LimitsSettings,
    AuthSettings,
    ServerSettings,
)


class Settings(
    ServerSettings,
    AuthSettings,
    LimitsSettings,
    BatchingSettings,
    SynthesisSettings,
    ServingSettings,
    StoreSettings,
):
    """Everything an operator can set: each field is the variable ``SYNNET_<FIELD>`` (upper case).

    Tests build their own (``Settings(max_batch_size=8)``; what they leave out still comes from the
    environment) and hand them to ``service.app.create_app``.
    """


Group = TypeVar("Group", bound=SettingsGroup)


def read(group: type[Group]) -> Group:
    """``group`` read from the environment now; a bad value is a :class:`SettingsError` naming it."""
    try:
        return group()
    except ValidationError as exc:
        raise settings_error(exc, group) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once (never at import time)."""
    return read(Settings)
