"""Checkpoints trained elsewhere (e.g. slim ones from a remote GPU) into the stores of their runs."""

from __future__ import annotations

import logging
from pathlib import Path

from experiments.paper.plan import Stores, plan
from training.checkpoint import load_checkpoint
from training.export import export_checkpoint

logger = logging.getLogger(__name__)


def export_checkpoints(folder: Path, stores: Stores, source: str | None) -> int:
    """Export ``<folder>/<run name>.pt`` checkpoints to their stores.

    ``source`` replaces the manifest's ``training_data.source``: the path the remote machine saw
    means nothing here. Returns the number of models exported.
    """
    runs = {run.name: run for run in plan()}
    exported = 0
    for path in sorted(folder.glob("*.pt")):
        run = runs.get(path.stem)
        if run is None:
            logger.warning("%s is not a run of the plan; skipped", path.name)
            continue
        checkpoint = load_checkpoint(path)
        if source:
            checkpoint["meta"]["manifest"]["training_data"]["source"] = source
        manifest = export_checkpoint(checkpoint, stores.of(run), run.name)
        logger.info("exported %s (sha256 %s) to %s", run.name, manifest.sha256[:12], stores.of(run))
        exported += 1
    return exported
