"""Choosing which model(s) serve a request for (src → dst): one rule for the service, the CLI and the API.

1. The model made for exactly that configuration (same sources and targets, in any order).
2. Otherwise one model whose sources are a subset of those given and whose targets include every
   requested target (a MIMO model may produce more than asked).
3. Otherwise several such models, each serving some targets (greedy: the model covering most
   remaining targets first).
Ties prefer the model that uses more of the given sources, then fewer extra targets, then the
name, so the choice is deterministic. If a target cannot be served at all, :class:`NoModelError`
lists the configurations that are available (the service answers it with a 404).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from synnet.errors import SynnetError
from synnet.manifest import ModelManifest
from synnet.modalities import Modality, format_modalities


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


def available_configurations(manifests: Sequence[ModelManifest]) -> list[str]:
    return sorted({describe(m) for m in manifests})


def plan(src: Sequence[Modality], dst: Sequence[Modality], manifests: Sequence[ModelManifest]) -> list[Assignment]:
    """Assign every target in ``dst`` to a model that can compute it from ``src``.

    Raises:
        NoModelError: when some target has no usable model; the message lists what is available.
    """
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
    if remaining:
        missing = format_modalities(t for t in dst if t in remaining)
        configurations = available_configurations(manifests)
        listing = "; ".join(configurations) if configurations else "none (no model is loaded)"
        raise NoModelError(
            f"no model synthesizes {missing} from {format_modalities(src)}; available configurations: {listing}",
            available=configurations,
        )
    return sorted(assignments, key=lambda a: list(dst).index(a.targets[0]))
