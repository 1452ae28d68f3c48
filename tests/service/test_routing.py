"""Routing over manifests: exact model first, then subset-of-sources fallbacks, several models, 404; and
between dedicated models that can serve a target, the better recorded score."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from synnet.evaluation import EvaluationRecord
from synnet.manifest import ArchitectureSpec, LossSpec, ModelManifest, TrainingDataSpec
from synnet.modalities import Modality, parse_modalities
from synnet.routing import NoModelError, all_configurations, available_configurations, plan
from synnet.scores import TargetMetrics


def manifest(name: str, src: str, dst: str) -> ModelManifest:
    return ModelManifest(
        name=name,
        src=src,
        dst=dst,
        architecture=ArchitectureSpec(name="synnet"),
        loss=LossSpec(name="joint"),
        training_data=TrainingDataSpec(source="generated", n_cases=1),
        sha256="0" * 64,
        created=datetime(2026, 1, 1, tzinfo=UTC),
    )


STORE = [
    manifest("t1_to_t2", "T1", "T2"),
    manifest("t1_t1c_to_t2", "T1,T1c", "T2"),
    manifest("t1_to_t2_flair", "T1", "T2,FLAIR"),
    manifest("t1_t2_to_t1c", "T1,T2", "T1c"),
]


def route(src: str, dst: str, store: list[ModelManifest] = STORE) -> list[tuple[str, str, bool]]:
    return [(a.name, ",".join(a.targets), a.exact) for a in plan(parse_modalities(src), parse_modalities(dst), store)]


def test_the_model_made_for_exactly_the_request_wins_in_any_order() -> None:
    assert route("T1", "T2") == [("t1_to_t2", "T2", True)]
    assert route("T1c,T1", "T2") == [("t1_t1c_to_t2", "T2", True)]
    # per target: T2 from T1 has a model made for exactly that; the MIMO model keeps FLAIR
    assert route("T1", "FLAIR,T2") == [("t1_to_t2_flair", "FLAIR", True), ("t1_to_t2", "T2", False)]


def test_fallback_uses_a_model_whose_sources_are_a_subset() -> None:
    # No T1,T1c,T2 -> ... model: the one using the most given sources serves.
    assert route("T1,T1c,FLAIR", "T2") == [("t1_t1c_to_t2", "T2", False)]
    # A MIMO model serves a subset of its targets.
    assert route("T1", "FLAIR") == [("t1_to_t2_flair", "FLAIR", False)]


def test_several_targets_from_several_models_each_using_the_most_sources() -> None:
    assert route("T1,T1c", "FLAIR,T2") == [("t1_to_t2_flair", "FLAIR", False), ("t1_t1c_to_t2", "T2", False)]
    assert route("T1,T2", "T1c,FLAIR") == [("t1_t2_to_t1c", "T1c", False), ("t1_to_t2_flair", "FLAIR", False)]
    assert route("T1", "T2,FLAIR", [manifest("t1_to_t2_flair", "T1", "T2,FLAIR")]) == [
        ("t1_to_t2_flair", "T2,FLAIR", True)  # targets on one model run together
    ]


@pytest.mark.parametrize("scored", [False, True])
def test_a_target_gets_the_same_model_whatever_else_is_asked(scored: bool) -> None:
    store = [
        *STORE,
        manifest("t1c_to_t2_flair", "T1c", "T2,FLAIR"),
        manifest("t1_t1c_to_flair", "T1,T1c", "FLAIR"),
        manifest("t2_flair_to_t1_t1c", "T2,FLAIR", "T1,T1c"),
        manifest("t2_flair_to_t1c", "T2,FLAIR", "T1c"),
        manifest("t2_to_t1c", "T2", "T1c"),
    ]
    evaluations = (
        _scored(
            t1_to_t2={"T2": (15.5, 0.53)}, t1_t1c_to_t2={"T2": (15.0, 0.55)},
            t1_to_t2_flair={"T2": (15.0, 0.50), "FLAIR": (12.0, 0.40)},
            t1c_to_t2_flair={"T2": (16.0, 0.56), "FLAIR": (13.0, 0.38)}, t1_t1c_to_flair={"FLAIR": (12.5, 0.41)},
            # the bundled store's T1c from T2,FLAIR: both beat the MIMO model, neither beats the other on both
            t2_flair_to_t1_t1c={"T1": (14.8, 0.63), "T1c": (10.2, 0.425)}, t2_flair_to_t1c={"T1c": (11.7, 0.432)},
            t2_to_t1c={"T1c": (11.2, 0.436)},
        )
        if scored
        else {}
    )  # fmt: skip
    served = 0
    for src, dst in all_configurations():
        try:
            assignments = plan(src, dst, store, evaluations)
        except NoModelError:
            continue
        for assignment in assignments:
            for target in assignment.targets:
                (alone,) = plan(src, (target,), store, evaluations)
                assert alone.name == assignment.name, (src, dst, target)
                served += 1
    assert served > 20


def test_no_model_lists_available_configurations() -> None:
    with pytest.raises(NoModelError) as raised:
        route("T2", "T1")
    assert raised.value.code == "no_model"
    assert "no model synthesizes T1 from T2" in raised.value.detail
    assert raised.value.available == ["T1,T1c->T2", "T1,T2->T1c", "T1->T2", "T1->T2,FLAIR"]
    for configuration in raised.value.available:
        assert configuration in raised.value.detail


def test_partially_servable_request_is_refused_naming_the_missing_target() -> None:
    with pytest.raises(NoModelError, match="no model synthesizes T1c from T1"):
        route("T1", "T2,T1c")


def test_empty_store() -> None:
    with pytest.raises(NoModelError, match="none"):
        route("T1", "T2", [])
    assert available_configurations([]) == []


def _scored(**scores: dict[str, tuple[float, float]]) -> dict[str, EvaluationRecord]:
    """evaluation.json records by model name: target -> (brain PSNR, brain SSIM)."""

    def record(by_target: dict[str, tuple[float, float]]) -> EvaluationRecord:
        return EvaluationRecord(
            targets={Modality(t): TargetMetrics(psnr_brain=p, ssim_brain=v) for t, (p, v) in by_target.items()}
        )

    return {name: record(by_target) for name, by_target in scores.items()}


def test_a_dedicated_model_with_fewer_sources_takes_a_target_it_scores_higher_on() -> None:
    src, dst = parse_modalities("T1,T1c"), parse_modalities("T2")
    better_subset = _scored(t1_to_t2={"T2": (16.0, 0.60)}, t1_t1c_to_t2={"T2": (15.0, 0.55)})
    (only,) = plan(src, dst, STORE, better_subset)
    assert (only.name, only.exact) == ("t1_to_t2", False)
    worse_subset = _scored(t1_to_t2={"T2": (14.0, 0.50)}, t1_t1c_to_t2={"T2": (15.0, 0.55)})
    assert [a.name for a in plan(src, dst, STORE, worse_subset)] == ["t1_t1c_to_t2"]
    one_measure_only = _scored(t1_to_t2={"T2": (14.9, 0.60)}, t1_t1c_to_t2={"T2": (15.0, 0.55)})
    assert [a.name for a in plan(src, dst, STORE, one_measure_only)] == ["t1_t1c_to_t2"]
    unscored_exact = _scored(t1_to_t2={"T2": (16.0, 0.60)})  # a measured win needs both models' scores
    assert [a.name for a in plan(src, dst, STORE, unscored_exact)] == ["t1_t1c_to_t2"]


def test_a_mimo_model_keeps_the_targets_it_scores_best_on() -> None:
    src, dst = parse_modalities("T1"), parse_modalities("T2,FLAIR")
    scores = _scored(t1_to_t2_flair={"T2": (15.0, 0.50), "FLAIR": (12.0, 0.40)}, t1_to_t2={"T2": (15.5, 0.53)})
    assert [(a.name, a.targets) for a in plan(src, dst, STORE, scores)] == [
        ("t1_to_t2", (Modality.T2,)),
        ("t1_to_t2_flair", (Modality.FLAIR,)),
    ]


def test_a_gain_within_a_rerun_s_noise_keeps_the_first_choice() -> None:
    src, dst = parse_modalities("T1,T1c"), parse_modalities("T2")
    close = _scored(t1_to_t2={"T2": (15.6, 0.56)}, t1_t1c_to_t2={"T2": (15.0, 0.55)})  # +0.6 dB, +0.01
    assert [a.name for a in plan(src, dst, STORE, close)] == ["t1_t1c_to_t2"]
    psnr_only = _scored(t1_to_t2={"T2": (17.0, 0.56)}, t1_t1c_to_t2={"T2": (15.0, 0.55)})  # +2 dB, +0.01
    assert [a.name for a in plan(src, dst, STORE, psnr_only)] == ["t1_t1c_to_t2"]


def test_among_several_better_models_the_better_ssim_wins_not_the_name() -> None:
    src, dst = parse_modalities("T1,T1c,FLAIR"), parse_modalities("T2")
    scores = _scored(
        t1_t1c_to_t2={"T2": (15.0, 0.50)}, t1_to_t2={"T2": (16.0, 0.52)}, t1_to_t2_flair={"T2": (15.8, 0.55)}
    )
    assert [a.name for a in plan(src, dst, STORE, scores)] == ["t1_to_t2_flair"]
