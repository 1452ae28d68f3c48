"""The ``SYNNET_*`` settings of training: apart from the service's, which never trains.

``training.fit`` and ``training.prepare`` read this group alone (``read(TrainingSettings)``); it is
not part of :class:`synnet.settings.Settings`, so a service is not configured by what a trainer sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from synnet.settings.groups import FolderOrUnset, SettingsGroup, setting

# The cache's folder when neither --cache-dir nor SYNNET_TRAINING_CACHE is given (beside data/phantom).
DEFAULT_TRAINING_CACHE = Path("data/cache")


class TrainingSettings(SettingsGroup):
    """Where a run keeps what it prepares."""

    title: ClassVar[str] = "Training"

    training_cache: FolderOrUnset = setting(
        None,
        "folder of the training cache (each case decoded once into memory-mapped arrays) when "
        "`--cache-dir` is not given; put it on a local disk of the training machine",
        shown="`data/cache`",
    )
