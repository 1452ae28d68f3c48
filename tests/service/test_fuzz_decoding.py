"""Fuzzing the decoders through a real ``python -m service``: requests that get past query parsing
(served configurations, real small NIfTI and PNG files, most of them damaged; ``upload_fuzzing``)
never get a 5xx; every refusal is JSON with a code and status of the error table in
``docs/service.md``; every answer to undamaged files is a 200 that the published schema validates,
carrying images of the input's shape."""

from __future__ import annotations

import base64
import io
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest
from error_table import documented_codes
from hypothesis import HealthCheck, given, note, settings
from upload_fuzzing import Upload, uploads

from live_service import LiveService, fuzzed_service
from synnet.imageio import read_image
from synnet.modalities import Modality

pytestmark = pytest.mark.slow

# What the session's store serves (conftest.MODELS): a SISO and a MISO model.
CONFIGURATIONS = [((Modality.T1,), (Modality.T2,)), ((Modality.T1, Modality.T1c), (Modality.FLAIR,))]
EXAMPLES = 400
API_KEY = "fuzz-key"
# Seeded and without a database, so CI runs the same cases every time; no deadline, since a request
# may wait for a shared CPU.
FUZZ = settings(
    max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip


@pytest.fixture(scope="module")
def server(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with fuzzed_service(store, API_KEY, tmp_path_factory.mktemp("fuzz_decoding")) as running:
        yield running


def decoded_shape(target: dict) -> tuple[int, ...]:
    """The shape of a target's base64 file, read back as a client would."""
    data = base64.b64decode(target["data"])
    if target["format"] == "npy":
        return np.load(io.BytesIO(data), allow_pickle=False).shape
    return read_image(data, target["filename"])[0].shape


def test_fuzzed_uploads_get_a_documented_answer_and_never_a_5xx(server: LiveService, record_property) -> None:
    documented = documented_codes()
    statuses: Counter[str] = Counter()
    began = time.perf_counter()
    with httpx.Client(base_url=server.url, headers={"X-API-Key": API_KEY}, timeout=60) as client:
        openapi = client.get("/openapi.json").json()
        schema = {"$ref": "#/components/schemas/SynthesisResponse", "components": openapi["components"]}
        success = jsonschema.Draft202012Validator(schema)

        @FUZZ
        @given(uploads(CONFIGURATIONS))
        def check(upload: Upload) -> None:
            response = client.post("/synthesize", params=upload.query, files=upload.files)
            body = response.json()
            note(f"{response.status_code}: {str(body)[:300]}")
            statuses[str(response.status_code)] += 1
            assert response.status_code < 500
            assert response.headers["content-type"] == "application/json"
            if response.status_code != 200:
                assert body["error"] in documented, f"{body['error']} is not in the error table"
                assert documented[body["error"]] == str(response.status_code)
                assert upload.damaged, "undamaged images were refused"
                statuses[body["error"]] += 1
                return
            success.validate(body)
            if not upload.damaged:
                assert tuple(body["input"]["shape"]) == upload.shape
            for target in body["targets"].values():
                assert decoded_shape(target) == tuple(body["input"]["shape"])

        check()
    seconds = time.perf_counter() - began
    record_property("fuzzed_uploads", sum(statuses[s] for s in statuses if s.isdigit()))
    record_property("fuzz_seconds", round(seconds, 1))
    record_property("statuses", dict(statuses))
    assert sum(statuses[s] for s in statuses if s.isdigit()) >= EXAMPLES
    assert statuses["200"] > EXAMPLES // 10 and statuses["422"] > EXAMPLES // 10  # both sides were reached
