"""Schemathesis over ``/openapi.json`` of a real ``python -m service`` with an API key configured: at
least 500 generated requests, schema-valid and schema-violating, to every operation; none gets a
5xx, and every answer conforms to the published schema (status code documented, content type,
headers and body as declared, invalid requests refused, protected routes refusing a missing key)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from live_service import LiveService, fuzzed_service

pytestmark = pytest.mark.slow

EXAMPLES = 600
API_KEY = "fuzz-key"
# Seeded and without a database, so CI runs the same cases every time; no deadline, since a request
# may wait for a shared CPU.
FUZZ = settings(
    max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)  # fmt: skip
# Every built-in check but one: positive_data_acceptance wants a 2xx for each schema-valid request,
# and no schema can say which bytes are an MR image or which modalities a store serves, so
# /synthesize rightly refuses generated files (422). test_fuzz_decoding sends real images instead.
EXCLUDED_CHECKS = [positive_data_acceptance]


@pytest.fixture(scope="module")
def server(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with fuzzed_service(store, API_KEY, tmp_path_factory.mktemp("fuzz_openapi")) as running:
        yield running


def test_generated_requests_get_documented_answers_and_never_a_5xx(server: LiveService, record_property) -> None:
    # An explicit config: no schemathesis.toml of the working directory changes what CI runs.
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"APIKeyHeader": {"api_key": API_KEY}}}})
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config)
    answers: Counter[str] = Counter()
    began = time.perf_counter()

    @FUZZ
    @given(schema.as_strategy(GenerationMode.POSITIVE) | schema.as_strategy(GenerationMode.NEGATIVE))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=server.url, timeout=60)
        answers[f"{case.method} {case.path} {response.status_code}"] += 1
        case.validate_response(response, excluded_checks=EXCLUDED_CHECKS)

    check()
    seconds = time.perf_counter() - began
    record_property("openapi_cases", sum(answers.values()))  # the figures of docs/service.md (--junitxml)
    record_property("openapi_seconds", round(seconds, 1))
    record_property("answers", dict(answers))
    assert sum(answers.values()) >= 500
    operations = {f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for method in item}
    assert {answer.rsplit(" ", 1)[0] for answer in answers} == operations  # every operation was fuzzed
    # Nor a 5xx that a check could have missed: the server's own count (its /readyz said 503 until ready).
    counted = httpx.get(f"{server.url}/metrics", headers={"X-API-Key": API_KEY}).text.splitlines()
    server_errors = [line for line in counted if 'status="5' in line and 'route="/readyz"' not in line]
    assert any(line.startswith("synnet_http_requests_total") for line in counted)
    assert not server_errors
