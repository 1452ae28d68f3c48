"""``evaluation.json`` from an evaluation's summaries: the validation dataset's scores and each test dataset's.

``training.evaluate`` scores a model on the cases its manifest lists as ``test_cases`` in ``--data``
(the **validation** subjects: choices about the bundled models were made on them) and on every case
of the ``--also`` folders it was not trained on (**test** data: only reported). Both kinds are kept
in both conventions (:class:`synnet.scores.HeldOutMetrics`); routing reads the validation scores only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from synnet.dataset_layout import CaseFiles
from synnet.evaluation import ConfigurationScore, DatasetScores, EvaluationRecord
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from training.scoring import Summary, held_out_metrics

logger = logging.getLogger(__name__)


def unseen_cases(manifest: ModelManifest, cases: Sequence[CaseFiles]) -> list[CaseFiles]:
    """The ``cases`` that can be test data for the model: those it was not trained on (the others logged)."""
    trained_on = set(manifest.training_data.train_cases)
    seen = sorted(case.case_id for case in cases if case.case_id in trained_on)
    if seen:
        logger.info("%s: not scored on %s, which it was trained on", manifest.name, ", ".join(seen))
    return [case for case in cases if case.case_id not in trained_on]


def save_evaluation(
    folder: Path,
    summaries: Sequence[Summary],
    validation: str,
    folders: Mapping[str, str],
    cases: Mapping[str, Sequence[str]],
    command: str,
) -> EvaluationRecord:
    """Write one model's ``evaluation.json`` from its ``summaries`` (every dataset it was scored on).

    Args:
        folder: the model's folder in the store.
        summaries: the model's, one per dataset and target (and sources, for an any-to-any model).
        validation: the dataset whose scores are the validation scores; every other one is a test dataset.
        folders: each dataset's folder as given on the command line.
        cases: each dataset's cases the model was scored on.
        command: the command that made the scores.

    Fields of an existing record that an evaluation does not make are kept; the scores are replaced,
    test datasets not scored this time included (they belonged to the weights scored before).
    """
    by_dataset: dict[str, list[Summary]] = {}
    for s in summaries:
        by_dataset.setdefault(s.dataset, []).append(s)
    own = by_dataset.pop(validation, [])
    test = {
        dataset: DatasetScores(data=folders[dataset], cases=list(cases[dataset]), **_scores(found))
        for dataset, found in sorted(by_dataset.items())
    }
    update = {
        **_scores(own),
        "test": test,
        "data": {"data": folders[validation], "cases": list(cases[validation]), "command": command},
    }
    record = EvaluationRecord.load_if_present(folder) or EvaluationRecord()
    record = EvaluationRecord.model_validate(record.model_dump() | update)
    record.save(folder)
    return record


def _scores(summaries: Sequence[Summary]) -> dict[str, object]:
    """Per target (a dedicated model's summaries) or per configuration (an any-to-any model's, with sources)."""
    targets = {Modality(s.target): held_out_metrics(s) for s in summaries if not s.sources}
    configurations = [
        ConfigurationScore(src=s.sources.split(","), target=s.target, metrics=held_out_metrics(s))
        for s in summaries
        if s.sources
    ]
    return {"targets": targets, "configurations": configurations}
