"""Choosing which model(s) serve a request for (src → dst): one rule for the service, the CLI and the API.

Each requested target is routed as a request for that target alone would be, so asking for more
targets never changes the model another target gets (targets that land on one model run in one
pass). Dedicated models (made for one configuration) come first:

1. The model made for exactly (src -> that target), sources in any order.
2. Otherwise a model whose sources are a subset of those given and whose targets include it (a MIMO
   model may produce more than asked); the one using more of the given sources, then fewer extra
   targets, then the name, so the choice is deterministic.

An any-to-any model (``manifest.any_to_any``, the unified SynNet) serves every target that is not
a source; it takes each target no dedicated model serves.

Where several models can make a target, the first choice keeps it unless another one **beats it on
the validation subjects** (the scores in ``evaluation.json``): higher brain PSNR *and* brain SSIM,
each by more than :data:`RERUN_NOISE`, what training the same recipe with a second seed moves them.
A smaller difference says nothing about which model generalizes better, and then the model made for
the request's configuration is the better bet. Both sides' scores are needed; among several winners
the better :data:`QUALITY`, then PSNR, then the name. A dedicated model is scored on its own
configuration: one that ignores a source computes exactly what it was scored on (T1 -> FLAIR, trained
on more subjects, serves T1,T1c -> FLAIR). An any-to-any model's score is the one for exactly these
sources, else for the closest evaluated ones (:meth:`synnet.evaluation.EvaluationRecord.score`).

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

# The validation score routing ranks by: brain SSIM (our strict in-brain convention, synnet.metrics).
QUALITY = "ssim_brain"
# How far apart two trainings of one recipe that differ only in their seed land on the validation subjects
# (the bundled T1 -> T2 recipe, seeds 0 and 1: 0.68 dB brain PSNR, 0.017 brain SSIM): a model replaces the
# first choice for a target only when it is better on both by more than this.
RERUN_NOISE = {"psnr_brain": 0.7, "ssim_brain": 0.016}


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
    anywhere = [m for m in manifests if m.any_to_any and set(src) <= set(m.src)]
    best = _best_any_to_any(anywhere, src, target, evaluations)
    if chosen is None:
        return best
    others = [m for m in dedicated if set(m.src) <= set(src) and target in m.dst and m is not chosen]
    return _challenged(chosen, [*others, *([best] if best is not None else [])], src, target, evaluations)


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


def _challenged(
    current: ModelManifest,
    challengers: Sequence[ModelManifest],
    src: Sequence[Modality],
    target: Modality,
    evaluations: Mapping[str, EvaluationRecord | None],
) -> ModelManifest:
    """``current``, or the challenger with the best :data:`QUALITY` among those that beat it on both brain PSNR
    and brain SSIM by more than :data:`RERUN_NOISE` (then PSNR, then name)."""

    def measured(manifest: ModelManifest) -> TargetMetrics | None:
        metrics = recorded_metrics(manifest, src, target, evaluations.get(manifest.name))
        if metrics is None or not all(math.isfinite(getattr(metrics, k)) for k in RERUN_NOISE):
            return None
        return metrics

    ours = measured(current)
    if ours is None:
        return current
    winners = []
    for challenger in challengers:
        theirs = measured(challenger)
        if theirs is not None and all(getattr(theirs, k) > getattr(ours, k) + m for k, m in RERUN_NOISE.items()):
            winners.append((-getattr(theirs, QUALITY), -theirs.psnr_brain, challenger.name, challenger))
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
