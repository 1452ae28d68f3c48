from __future__ import annotations

import pytest

from synnet.errors import SynnetError, UnknownModalityError
from synnet.modalities import Modality, check_disjoint, format_modalities, parse_modalities, parse_modality


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("t1", Modality.T1), ("T1N", Modality.T1), ("t1w", Modality.T1),
        ("t1c", Modality.T1c), ("T1CE", Modality.T1c), ("t1Gd", Modality.T1c),
        ("t2", Modality.T2), ("T2W", Modality.T2),
        ("flair", Modality.FLAIR), ("FLAIR", Modality.FLAIR), ("t2f", Modality.FLAIR), (" Flair ", Modality.FLAIR),
    ],
)
def test_aliases_are_case_insensitive(alias: str, expected: Modality) -> None:
    assert parse_modality(alias) is expected


def test_unknown_modality_lists_valid_names() -> None:
    with pytest.raises(UnknownModalityError) as info:
        parse_modality("pd")
    message = str(info.value)
    assert "'pd'" in message
    for name in ("T1", "T1c", "T2", "FLAIR"):
        assert name in message
    assert info.value.code == "unknown_modality"


def test_parse_list_keeps_order_and_rejects_duplicates() -> None:
    assert parse_modalities("t2f, T1ce") == (Modality.FLAIR, Modality.T1c)
    assert parse_modalities(["T1", "t2w"]) == (Modality.T1, Modality.T2)
    with pytest.raises(SynnetError, match="twice: T1"):
        parse_modalities("t1,t1n")
    with pytest.raises(UnknownModalityError):
        parse_modalities(" , ")


def test_overlap_is_rejected_and_named() -> None:
    check_disjoint((Modality.T1,), (Modality.T2,))
    with pytest.raises(SynnetError, match="overlap on T2") as info:
        check_disjoint((Modality.T1, Modality.T2), (Modality.T2, Modality.FLAIR))
    assert info.value.code == "overlapping_modalities"


def test_format_round_trips() -> None:
    config = (Modality.T1, Modality.T1c)
    assert parse_modalities(format_modalities(config)) == config
