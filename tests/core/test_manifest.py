from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from synnet.errors import UnknownModalityError
from synnet.manifest import ArchitectureSpec, LossSpec, ModelManifest, TrainingDataSpec, sha256_file
from synnet.modalities import Modality
from synnet.normalization import IntensityRange


def _manifest(**overrides) -> ModelManifest:
    fields = dict(
        name="t1_to_t2",
        src="t1,t1ce",
        dst=["t2w"],
        architecture=ArchitectureSpec(name="synnet", params={"features": 64, "depth": 4}),
        loss=LossSpec(name="joint", lambdas={"l2": 10, "ssim": 5, "tv": 0.5}),
        output_reference={"T2": IntensityRange(lo=10, hi=900)},
        training_data=TrainingDataSpec(source="generated", n_cases=3, train_cases=["a", "b"], val_cases=["c"]),
        sha256="0" * 64,
        created=datetime(2026, 1, 1, tzinfo=UTC),
    )
    fields.update(overrides)
    return ModelManifest(**fields)


def test_manifest_canonicalizes_modalities_and_round_trips(tmp_path) -> None:
    manifest = _manifest()
    assert manifest.src == [Modality.T1, Modality.T1c] and manifest.dst == [Modality.T2]
    assert manifest.config_key == ((Modality.T1, Modality.T1c), (Modality.T2,))
    manifest.save(tmp_path)
    assert ModelManifest.load(tmp_path) == manifest


def test_public_view_hides_internals() -> None:
    public = _manifest().public()
    assert "model_file" not in public and "frameworks" not in public
    assert public["src"] == ["T1", "T1c"] and public["normalization"]["upper_percentile"] == 99.5


def test_bad_modality_in_manifest_is_rejected() -> None:
    with pytest.raises((ValidationError, UnknownModalityError)):
        _manifest(dst=["PD"])


def test_sha256_file(tmp_path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
