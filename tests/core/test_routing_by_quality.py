"""Routing with an any-to-any model: it fills what no dedicated model serves, and takes a target from a
dedicated model only when its validation scores for that configuration are better on both brain PSNR and
brain SSIM by more than a rerun's noise (synnet.routing.RERUN_NOISE)."""

from __future__ import annotations

from stand_in_manifests import stand_in_manifest

from synnet.evaluation import ConfigurationScore, EvaluationRecord
from synnet.manifest import TargetMetrics
from synnet.modalities import Modality, parse_modalities
from synnet.routing import available_configurations, plan, served_configurations

manifest = stand_in_manifest
EVERY = "T1,T1c,T2,FLAIR"
UNIFIED = manifest("unified", EVERY, EVERY, any_to_any=True)
STORE = [manifest("t1_to_t2", "T1", "T2"), manifest("t1_to_t2_flair", "T1", "T2,FLAIR"), UNIFIED]


def metrics(ssim: float) -> TargetMetrics:
    """Scores whose PSNR moves with SSIM (40 dB per unit: 0.05 SSIM is 2 dB), so one number orders both."""
    return TargetMetrics(ssim_brain=ssim, psnr_brain=40 * ssim)


def dedicated(**ssim: float) -> EvaluationRecord:
    return EvaluationRecord(targets={Modality(t): metrics(v) for t, v in ssim.items()})


def unified(*scores: tuple[str, str, float]) -> EvaluationRecord:
    return EvaluationRecord(
        configurations=[
            ConfigurationScore(src=parse_modalities(s), target=Modality(t), metrics=metrics(v)) for s, t, v in scores
        ]
    )


def route(src: str, dst: str, evaluations: dict | None = None, store: list = STORE) -> list[tuple[str, str]]:
    assignments = plan(parse_modalities(src), parse_modalities(dst), store, evaluations)
    return [(a.name, ",".join(a.targets)) for a in assignments]


def test_unified_serves_what_no_dedicated_model_does_and_lists_all_50() -> None:
    assert route("T2", "T1") == [("unified", "T1")]
    assert route("T1c,FLAIR", "T1,T2") == [("unified", "T1,T2")]
    assert route("T1", "T2,T1c") == [("t1_to_t2", "T2"), ("unified", "T1c")]
    assert len(available_configurations(STORE)) == 50
    assert len(served_configurations(STORE)) == 50
    assert len(served_configurations(STORE[:2])) < 50


def test_without_scores_the_dedicated_model_keeps_its_targets() -> None:
    assert route("T1", "T2") == [("t1_to_t2", "T2")]
    only_unified = {"unified": unified(("T1", "T2", 0.99))}  # the dedicated one has no score
    assert route("T1", "T2", only_unified) == [("t1_to_t2", "T2")]


def test_the_dedicated_model_wins_when_it_scores_better_or_within_a_rerun() -> None:
    evaluations = {"t1_to_t2": dedicated(T2=0.80), "unified": unified(("T1", "T2", 0.75))}
    assert route("T1", "T2", evaluations) == [("t1_to_t2", "T2")]
    tie = {"t1_to_t2": dedicated(T2=0.80), "unified": unified(("T1", "T2", 0.80))}
    assert route("T1", "T2", tie) == [("t1_to_t2", "T2")]
    within_noise = {"t1_to_t2": dedicated(T2=0.80), "unified": unified(("T1", "T2", 0.814))}  # +0.56 dB, +0.014
    assert route("T1", "T2", within_noise) == [("t1_to_t2", "T2")]
    one_measure = {
        "t1_to_t2": EvaluationRecord(targets={Modality.T2: TargetMetrics(psnr_brain=16.0, ssim_brain=0.50)}),
        "unified": EvaluationRecord(configurations=[ConfigurationScore(
            src=[Modality.T1], target=Modality.T2, metrics=TargetMetrics(psnr_brain=15.0, ssim_brain=0.60))]),
    }  # fmt: skip
    assert route("T1", "T2", one_measure) == [("t1_to_t2", "T2")]


def test_the_unified_model_wins_per_target_when_it_scores_better() -> None:
    evaluations = {
        "t1_to_t2": dedicated(T2=0.70),
        "t1_to_t2_flair": dedicated(T2=0.72, FLAIR=0.90),
        "unified": unified(("T1", "T2", 0.75), ("T1", "FLAIR", 0.85)),
    }  # the unified model beats T1 -> T2 by 2 dB / 0.05, loses FLAIR
    assert route("T1", "T2", evaluations) == [("unified", "T2")]
    # one request, two targets: each goes to the better-scored model
    assert route("T1", "T2,FLAIR", evaluations) == [("unified", "T2"), ("t1_to_t2_flair", "FLAIR")]


def test_the_closest_evaluated_configuration_stands_in_for_one_not_evaluated() -> None:
    record = unified(("T1", "T2", 0.60), ("T1,T1c", "T2", 0.85), ("T1c,FLAIR", "T2", 0.95), ("T2", "T1", 0.99))
    closest = record.score(parse_modalities("T1,T1c,FLAIR"), Modality.T2)
    assert closest is not None and closest.src == list(parse_modalities("T1,T1c"))  # 2 in common, fewest others, order
    assert record.score(parse_modalities("T1"), Modality.T1c) is None
    evaluations = {"t1_to_t2": dedicated(T2=0.80), "unified": record}
    assert route("T1,T1c,FLAIR", "T2", evaluations) == [("unified", "T2")]  # 0.85 (T1,T1c) beats 0.80
    served = {c.configuration: c.targets for c in served_configurations(STORE, evaluations)}
    assert served["T1->T2"][Modality.T2] == ("t1_to_t2", 0.80)  # exact unified score 0.60 loses
    assert served["T1,T1c,FLAIR->T2"][Modality.T2] == ("unified", 0.85)
