"""Canonical MR modality names and the aliases users write for them."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from synnet.errors import SynnetError, UnknownModalityError


class Modality(StrEnum):
    """The four structural MR contrasts of BraTS, in canonical spelling."""

    T1 = "T1"
    T1c = "T1c"
    T2 = "T2"
    FLAIR = "FLAIR"


# Lower-case alias -> canonical modality. Covers BraTS 2018-2021 (t1, t1ce, t2, flair),
# BraTS 2023 (t1n, t1c, t2w, t2f) and the usual radiology spellings.
_ALIASES: dict[str, Modality] = {
    "t1": Modality.T1,
    "t1n": Modality.T1,
    "t1w": Modality.T1,
    "t1c": Modality.T1c,
    "t1ce": Modality.T1c,
    "t1gd": Modality.T1c,
    "t2": Modality.T2,
    "t2w": Modality.T2,
    "flair": Modality.FLAIR,
    "t2f": Modality.FLAIR,
}

VALID_NAMES = ", ".join(m.value for m in Modality)
ALIAS_NAMES = ", ".join(sorted(_ALIASES))


def parse_modality(name: str | Modality) -> Modality:
    """Return the canonical modality for a name or alias, case-insensitively.

    Raises:
        UnknownModalityError: naming the input and listing the valid names and aliases.
    """
    if isinstance(name, Modality):
        return name
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise UnknownModalityError(
            f"unknown modality {name!r}; valid modalities are {VALID_NAMES} "
            f"(aliases, case-insensitive: {ALIAS_NAMES})"
        )
    return _ALIASES[key]


def parse_modalities(names: str | Iterable[str | Modality]) -> tuple[Modality, ...]:
    """Parse a comma-separated string (``"T1,t1ce"``) or a list into canonical modalities.

    Order is kept; an empty list or a repeated modality is an error.
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    parsed = tuple(parse_modality(item) for item in items if str(item).strip())
    if not parsed:
        raise UnknownModalityError(f"no modality given; valid modalities are {VALID_NAMES}")
    duplicates = sorted({m.value for m in parsed if parsed.count(m) > 1})
    if duplicates:
        raise SynnetError(f"modality listed twice: {', '.join(duplicates)}", code="duplicate_modality")
    return parsed


def check_disjoint(src: Iterable[Modality], dst: Iterable[Modality]) -> None:
    """Reject a configuration whose targets are also among its sources."""
    overlap = [m.value for m in dst if m in set(src)]
    if overlap:
        raise SynnetError(
            f"src and dst overlap on {', '.join(overlap)}: a target cannot also be a source",
            code="overlapping_modalities",
        )


def format_modalities(modalities: Iterable[Modality]) -> str:
    """``(T1, T1c) -> "T1,T1c"``, the spelling used in query strings and model names."""
    return ",".join(m.value for m in modalities)
