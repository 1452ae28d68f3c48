"""Choosing which model(s) serve a request for (src → dst): one rule for the service, the CLI and the API.

Dedicated models (made for one configuration) are assigned first, as always:

1. The model made for exactly that configuration (same sources and targets, in any order).
2. Otherwise one model whose sources are a subset of those given and whose targets include every
   requested target (a MIMO model may produce more than asked).
3. Otherwise several such models, each serving some targets (greedy: the model covering most
   remaining targets first).
Ties prefer the model that uses more of the given sources, then fewer extra targets, then the
name, so the choice is deterministic. Then, per target, another dedicated model that can make it from
the given sources (its sources a subset of them) takes it when its recorded held-out brain PSNR and
brain SSIM are both higher than the chosen one's: a model that ignores a source computes exactly what
it was scored on, so the scores compare like for like (T1 -> FLAIR, trained on more subjects, serves
T1,T1c -> FLAIR). A win on both measures is needed, not on one; among several winners the better
:data:`QUALITY` wins. Without both models' scores the first choice stays.

An any-to-any model (``manifest.any_to_any``, the unified SynNet) serves every target that is not
a source. Per target it is used

* when no dedicated model serves the target, and
* when it has the better recorded held-out score (:data:`QUALITY`, brain SSIM) than the dedicated
  model for that target: its score for exactly these sources, else for the closest evaluated
  ones (:meth:`synnet.evaluation.EvaluationRecord.score`), against the dedicated model's score on
  its own configuration (``evaluation.json``). Without both scores the dedicated model keeps the
  target: a measured win is needed to replace it.

Among several any-to-any models the better-scored one wins, then the name. If a target cannot be
served at all, :class:`NoModelError` lists the configurations that are available (the service
answers it with a 404).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from synnet.errors import SynnetError
from synnet.evaluation import EvaluationRecord
from synnet.manifest import ModelManifest
from synnet.modalities import Modality, format_modalities
from synnet.scores import TargetMetrics

# The held-out score routing compares: brain SSIM (our strict in-brain convention, synnet.metrics).
QUALITY = "ssim_brain"


class NoModelError(SynnetError):
    """No model serves the request; ``available`` lists the configurations that are served."""

    code = "no_model"

    def __init__(self, message: str, *, available: list[str]) -> None:
        super().__init__(message)
        self.available = available


@dataclass(frozen=True)
class Assignment:
    """One model and the requested targets it serves."""

    manifest: ModelManifest
    targets: tuple[Modality, ...]
    exact: bool

    @property
    def name(self) -> str:
        return self.manifest.name


def describe(manifest: ModelManifest) -> str:
    return f"{format_modalities(manifest.src)}->{format_modalities(manifest.dst)}"


def all_configurations() -> list[tuple[tuple[Modality, ...], tuple[Modality, ...]]]:
    """Every (src, dst) of non-empty, disjoint modality sets, canonical order: 50 of them."""
    every = tuple(Modality)
    subsets = [c for n in range(1, len(every) + 1) for c in combinations(every, n)]
    return [(s, d) for s in subsets for d in subsets if not set(s) & set(d)]


def available_configurations(manifests: Sequence[ModelManifest]) -> list[str]:
    """The configurations served: each model's own, or all 50 when an any-to-any model is loaded."""
    if any(m.any_to_any for m in manifests):
        return sorted(f"{format_modalities(s)}->{format_modalities(d)}" for s, d in all_configurations())
    return sorted({describe(m) for m in manifests})


@dataclass(frozen=True)
class ServedConfiguration:
    """A configuration :func:`plan` serves: per target, the model's name and the score it was chosen by."""

    src: tuple[Modality, ...]
    dst: tuple[Modality, ...]
    targets: dict[Modality, tuple[str, float | None]]

    @property
    def configuration(self) -> str:
        return f"{format_modalities(self.src)}->{format_modalities(self.dst)}"


def served_configurations(
    manifests: Sequence[ModelManifest], evaluations: Mapping[str, EvaluationRecord | None] | None = None
) -> list[ServedConfiguration]:
    """Each of the 50 configurations that :func:`plan` can serve, routed as a request would be."""
    evaluations = evaluations or {}
    served = []
    for src, dst in all_configurations():
        try:
            assignments = plan(src, dst, manifests, evaluations)
        except NoModelError:
            continue
        targets = {
            t: (a.name, recorded_score(a.manifest, src, t, evaluations.get(a.name)))
            for a in assignments
            for t in a.targets
        }
        served.append(ServedConfiguration(src, dst, {t: targets[t] for t in dst}))
    return served


def recorded_metrics(
    manifest: ModelManifest, src: Sequence[Modality], target: Modality, evaluation: EvaluationRecord | None
) -> TargetMetrics | None:
    """The held-out scores recorded for ``manifest`` making ``target`` from ``src`` (None: not evaluated).

    A dedicated model has one record per target, on its own sources; an any-to-any model's record
    for exactly ``src``, else for the closest evaluated sources.
    """
    if evaluation is None:
        return None
    if manifest.any_to_any:
        scored = evaluation.score(src, target)
        return scored.metrics if scored is not None else None
    return evaluation.targets.get(target)


def recorded_score(
    manifest: ModelManifest, src: Sequence[Modality], target: Modality, evaluation: EvaluationRecord | None
) -> float | None:
    """The held-out :data:`QUALITY` routing compares for ``manifest`` making ``target`` from ``src``."""
    metrics = recorded_metrics(manifest, src, target, evaluation)
    value = getattr(metrics, QUALITY) if metrics is not None else math.nan
    return value if math.isfinite(value) else None  # NaN: not measured


def plan(
    src: Sequence[Modality],
    dst: Sequence[Modality],
    manifests: Sequence[ModelManifest],
    evaluations: Mapping[str, EvaluationRecord | None] | None = None,
) -> list[Assignment]:
    """Assign every target in ``dst`` to a model that can compute it from ``src`` (module docstring).

    Args:
        evaluations: held-out scores by model name (``evaluation.json``); None: no scores known.

    Raises:
        NoModelError: when some target has no usable model; the message lists what is available.
    """
    evaluations = evaluations or {}
    dedicated = _plan_dedicated(src, dst, [m for m in manifests if not m.any_to_any])
    chosen: dict[Modality, tuple[ModelManifest, bool]] = {}
    for assignment in dedicated:
        for target in assignment.targets:
            chosen[target] = (assignment.manifest, assignment.exact)
    others = [m for m in manifests if not m.any_to_any and set(m.src) <= set(src)]
    for target, (current, exact) in list(chosen.items()):
        better = _better_scored(current, [m for m in others if target in m.dst], src, target, evaluations)
        chosen[target] = (current, exact) if better is current else (better, False)
    anywhere = [m for m in manifests if m.any_to_any and set(src) <= set(m.src)]
    for target in dst:
        if target in src:
            continue
        best = _best_any_to_any(anywhere, src, target, evaluations)
        if best is None:
            continue
        current = chosen.get(target)
        if current is None:
            chosen[target] = (best, False)
            continue
        theirs = recorded_score(best, src, target, evaluations.get(best.name))
        ours = recorded_score(current[0], src, target, evaluations.get(current[0].name))
        if theirs is not None and ours is not None and theirs > ours:
            chosen[target] = (best, False)
    missing = [t for t in dst if t not in chosen]
    if missing:
        configurations = available_configurations(manifests)
        listing = "; ".join(configurations) if configurations else "none (no model is loaded)"
        raise NoModelError(
            f"no model synthesizes {format_modalities(missing)} from {format_modalities(src)}; "
            f"available configurations: {listing}",
            available=configurations,
        )
    grouped: dict[str, Assignment] = {}
    for target in dst:
        manifest, exact = chosen[target]
        previous = grouped.get(manifest.name)
        targets = (*previous.targets, target) if previous else (target,)
        grouped[manifest.name] = Assignment(manifest, targets, exact)
    return sorted(grouped.values(), key=lambda a: list(dst).index(a.targets[0]))


def _best_any_to_any(
    candidates: Sequence[ModelManifest],
    src: Sequence[Modality],
    target: Modality,
    evaluations: Mapping[str, EvaluationRecord | None],
) -> ModelManifest | None:
    def rank(m: ModelManifest) -> tuple[bool, float, str]:
        score = recorded_score(m, src, target, evaluations.get(m.name))
        return (score is None, -(score or 0.0), m.name)

    usable = [m for m in candidates if m.serves(src, target)]
    return min(usable, key=rank) if usable else None


def _better_scored(
    current: ModelManifest,
    candidates: Sequence[ModelManifest],
    src: Sequence[Modality],
    target: Modality,
    evaluations: Mapping[str, EvaluationRecord | None],
) -> ModelManifest:
    """``current``, or among the candidates whose recorded brain PSNR and SSIM both beat ``current``'s the one
    with the best :data:`QUALITY` (then PSNR, then name)."""

    def measured(manifest: ModelManifest) -> TargetMetrics | None:
        metrics = recorded_metrics(manifest, src, target, evaluations.get(manifest.name))
        if metrics is None or not (math.isfinite(metrics.psnr_brain) and math.isfinite(metrics.ssim_brain)):
            return None
        return metrics

    ours = measured(current)
    if ours is None:
        return current
    winners = []
    for candidate in candidates:
        theirs = measured(candidate)
        if theirs is not None and theirs.psnr_brain > ours.psnr_brain and theirs.ssim_brain > ours.ssim_brain:
            winners.append((-getattr(theirs, QUALITY), -theirs.psnr_brain, candidate.name, candidate))
    return min(winners)[-1] if winners else current


def _plan_dedicated(
    src: Sequence[Modality], dst: Sequence[Modality], manifests: Sequence[ModelManifest]
) -> list[Assignment]:
    """Rules 1-3 over the dedicated models; targets none of them serves are left out."""
    given, wanted = set(src), set(dst)
    usable = [m for m in manifests if set(m.src) <= given and set(m.dst) & wanted]
    remaining = set(wanted)

    def rank(m: ModelManifest) -> tuple[int, int, int, str]:
        covered = len(set(m.dst) & remaining)
        return (-covered, -len(m.src), len(set(m.dst) - wanted), m.name)

    exact = sorted((m for m in usable if set(m.src) == given and set(m.dst) == wanted), key=lambda m: m.name)
    if exact:
        return [Assignment(exact[0], tuple(dst), exact=True)]
    assignments: list[Assignment] = []
    while remaining:
        candidates = [m for m in usable if set(m.dst) & remaining]
        if not candidates:
            break
        best = min(candidates, key=rank)
        served = tuple(t for t in dst if t in remaining and t in set(best.dst))
        assignments.append(Assignment(best, served, exact=False))
        remaining -= set(served)
    return assignments
