"""Choosing which model(s) serve a request for (src → dst): one rule for the service, the CLI and the API.

Each requested target is routed as a request for that target alone would be, so asking for more
targets never changes the model another target gets (targets that land on one model run in one
pass). Dedicated models (made for one configuration) come first:

1. The model made for exactly (src -> that target), sources in any order.
2. Otherwise a model whose sources are a subset of those given and whose targets include it (a MIMO
   model may produce more than asked); the one using more of the given sources, then fewer extra
   targets, then the name, so the choice is deterministic.

Then another dedicated model that can make the target from the given sources (its sources a subset
of them) takes it when its recorded held-out brain PSNR and brain SSIM are both higher than the chosen
one's: a model that ignores a source computes exactly what it was scored on, so the scores compare
like for like (T1 -> FLAIR, trained on more subjects, serves T1,T1c -> FLAIR). A win on both measures
is needed, not on one; among several winners the better :data:`QUALITY` wins. Without both models'
scores the first choice stays.

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
    chosen = {t: m for t in dst if t not in src and (m := _serve_target(src, t, manifests, evaluations)) is not None}
    missing = [t for t in dst if t not in chosen]
    if missing:
        configurations = available_configurations(manifests)
        listing = "; ".join(configurations) if configurations else "none (no model is loaded)"
        raise NoModelError(
            f"no model synthesizes {format_modalities(missing)} from {format_modalities(src)}; "
            f"available configurations: {listing}",
            available=configurations,
        )
    grouped: dict[str, tuple[ModelManifest, tuple[Modality, ...]]] = {}  # in the order of dst's targets
    for target in dst:
        manifest = chosen[target]
        _, targets = grouped.get(manifest.name, (manifest, ()))
        grouped[manifest.name] = (manifest, (*targets, target))
    return [
        Assignment(manifest, targets, exact=set(manifest.src) == set(src) and set(manifest.dst) == set(dst))
        for manifest, targets in grouped.values()
    ]


def _serve_target(
    src: Sequence[Modality],
    target: Modality,
    manifests: Sequence[ModelManifest],
    evaluations: Mapping[str, EvaluationRecord | None],
) -> ModelManifest | None:
    """The model that serves ``target`` from ``src``: the same whatever else the request asks for."""
    dedicated = [m for m in manifests if not m.any_to_any]
    chosen = _first_dedicated(src, target, dedicated)
    if chosen is not None:
        others = [m for m in dedicated if set(m.src) <= set(src) and target in m.dst]
        chosen = _better_scored(chosen, others, src, target, evaluations)
    anywhere = [m for m in manifests if m.any_to_any and set(src) <= set(m.src)]
    best = _best_any_to_any(anywhere, src, target, evaluations)
    if best is None or chosen is None:
        return chosen or best
    theirs = recorded_score(best, src, target, evaluations.get(best.name))
    ours = recorded_score(chosen, src, target, evaluations.get(chosen.name))
    return best if theirs is not None and ours is not None and theirs > ours else chosen


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


def _first_dedicated(
    src: Sequence[Modality], target: Modality, dedicated: Sequence[ModelManifest]
) -> ModelManifest | None:
    """Rules 1-2: the dedicated model made for exactly (src -> target), else the best subset-of-sources one."""
    given = set(src)
    usable = [m for m in dedicated if set(m.src) <= given and target in m.dst]

    def rank(m: ModelManifest) -> tuple[bool, int, int, str]:
        exact = set(m.src) == given and set(m.dst) == {target}
        return (not exact, -len(m.src), len(m.dst) - 1, m.name)

    return min(usable, key=rank) if usable else None
