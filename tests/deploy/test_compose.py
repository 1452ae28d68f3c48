"""docker-compose.yml: valid Compose, and each profile wired the way docs/deployment.md says.

compose-spec.schema.json is the Compose Specification's JSON schema (schema/compose-spec.json of
the compose-spec project, Apache-2.0, LICENSE.compose-spec beside it), vendored because tests
run without network. It was taken from the PyPI package check-jsonschema 0.39.0, which ships it
as check_jsonschema/builtin_schemas/vendor/compose-spec.json (sha256 d549057e...0e64).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SERVICE_PORT = 8000  # SYNNET_PORT inside the containers and the images' EXPOSE


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads((HERE / "compose-spec.schema.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def errors(validator, document) -> list[str]:
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def test_compose_file_matches_the_compose_specification(validator, compose_raw, compose):
    assert errors(validator, compose_raw) == []
    assert errors(validator, compose) == []  # also once ${VARIABLES} take their defaults


def test_schema_rejects_a_broken_compose_file(validator, compose):
    # Guards against a schema that accepts anything (e.g. a truncated or wrong file).
    broken = {**compose, "services": {"synnet": {**compose["services"]["synnet"], "ports": [{"bogus": 1}]}}}
    assert errors(validator, broken)


def profiles(service: dict) -> set[str]:
    return set(service.get("profiles", []))


def store_mounts(service: dict) -> list[dict]:
    return [v for v in service.get("volumes", []) if isinstance(v, dict) and v.get("source") == "./model_store"]


def test_plain_up_serves_the_bundled_models_on_port_8000(compose):
    always_on = {name for name, service in compose["services"].items() if not profiles(service)}
    assert always_on == {"synnet"}
    synnet = compose["services"]["synnet"]
    assert f"8000:{SERVICE_PORT}" in synnet["ports"]
    assert synnet["build"]["target"] == "service"


def test_serving_containers_mount_the_store_read_only(compose):
    serving = {name: s for name, s in compose["services"].items() if s.get("build", {}).get("target") == "service"}
    assert set(serving) == {"synnet", "synnet-gpu", "synnet-replica"}
    for name, service in serving.items():
        (mount,) = store_mounts(service)
        assert mount["read_only"] is True, name
        assert mount["target"] == service["environment"]["SYNNET_MODEL_STORE"], name
        assert service["environment"]["SYNNET_PORT"] == str(SERVICE_PORT), name


def gpu_reservations(service: dict) -> list[dict]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def test_gpu_profile_reserves_an_nvidia_device(compose):
    gpu = compose["services"]["synnet-gpu"]
    assert profiles(gpu) == {"gpu"}
    assert gpu["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    (device,) = gpu_reservations(gpu)
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["environment"]["SYNNET_DEVICE"] == "cuda"


def test_scaled_profile_puts_replicas_behind_nginx(compose, template_variables):
    services = compose["services"]
    replica, lb = services["synnet-replica"], services["lb"]
    assert profiles(replica) == profiles(lb) == {"scaled"}
    assert int(replica["deploy"]["replicas"]) >= 2
    assert "ports" not in replica  # replicas are reached only through nginx
    assert lb["depends_on"]["synnet-replica"]["condition"] == "service_healthy"
    # The nginx image renders /etc/nginx/templates/*.template, substituting only what is set.
    (mount,) = lb["volumes"]
    assert (mount["source"], mount["target"]) == (
        "./docker/nginx/synnet.conf.template",
        "/etc/nginx/templates/default.conf.template",
    )
    assert template_variables <= set(lb["environment"])
    assert re.fullmatch(
        rf"(server synnet-replica:{SERVICE_PORT}[^;]*;\s*)+", lb["environment"]["SYNNET_UPSTREAM_SERVERS"]
    )
    (published,) = lb["ports"]
    assert published.endswith(f":{lb['environment']['NGINX_PORT']}")


def test_train_profiles_write_into_the_model_store(compose):
    from training.fitting.config import OutputConfig

    for name, profile in (("train", "train"), ("train-gpu", "train-gpu")):
        train = compose["services"][name]
        assert profiles(train) == {profile}
        assert train["build"]["target"] == "train"
        # The trainer's working directory is /workspace (docker/Dockerfile): its default --out lands in the bind mount.
        assert f"./model_store:/workspace/{OutputConfig.store}" in train["volumes"]
    assert gpu_reservations(compose["services"]["train-gpu"])


def test_every_build_target_exists(compose):
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        dockerfile = (REPO / service["build"]["context"] / service["build"]["dockerfile"]).read_text()
        stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile, flags=re.MULTILINE | re.IGNORECASE)
        assert service["build"]["target"] in stages, name
