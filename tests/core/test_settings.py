"""The settings object: what the environment's strings become, the defaults users had, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from synnet.api import default_store
from synnet.settings import GROUPS, Settings, SettingsError, StoreSettings, get_settings, read
from synnet.settings.errors import describe
from synnet.settings.groups import BUNDLED_STORE

# The defaults of service/settings.py before the settings were grouped: users must see the same.
OLD_DEFAULTS = {
    "host": "127.0.0.1",
    "port": 8000,
    "log_level": "info",
    "device": "auto",
    "autocast_dtype": "none",
    "channels_last": None,
    "model_format": "torchscript",
    "compile": False,
    "precision": "fp32",
    "torch_threads": None,
    "crop_to_brain": True,
    "nifti_gzip_level": 1,
    "max_batch_size": None,
    "max_batch_delay_s": None,
    "max_queued_requests": 32,
    "retry_after_s": 1,
    "request_timeout_s": 120.0,
    "upload_timeout_s": 60.0,
    "max_upload_bytes": 256 * 1024 * 1024,
    "max_form_parts": 16,
    "max_decoded_bytes_in_flight": None,
    "drain_timeout_s": 60.0,
    "api_keys": [],
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No SYNNET_* variable of the machine running the tests leaks in."""
    import os

    for name in list(os.environ):
        if name.startswith("SYNNET_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_the_defaults_are_the_old_ones(clean_env) -> None:
    settings = Settings()
    assert {name: getattr(settings, name) for name in OLD_DEFAULTS} == OLD_DEFAULTS
    assert settings.service_store() == Path("model_store")  # the service's old default, relative to its cwd
    assert default_store() == BUNDLED_STORE  # the Python API's and the synnet command's
    assert settings.batch_size_for("cpu") == 4 and settings.batch_size_for("cuda") == 32
    assert settings.batch_delay_for("cpu") == 0.0 and settings.batch_delay_for("cuda") == 0.01
    assert settings.api_key is None and not settings.auth_enabled


def test_every_field_belongs_to_exactly_one_group() -> None:
    grouped = [name for group in GROUPS for name in group.model_fields]
    assert sorted(grouped) == sorted(Settings.model_fields) and len(grouped) == len(set(grouped))
    for name, info in Settings.model_fields.items():
        assert info.description, f"{name} has no description"


@pytest.mark.parametrize(
    ("variable", "text", "field", "value"),
    [
        ("SYNNET_COMPILE", "true", "compile", True),
        ("SYNNET_COMPILE", "Off", "compile", False),
        ("SYNNET_COMPILE", "synnet_t1_to_t2, synnet_t2_to_t1,", "compile", ["synnet_t1_to_t2", "synnet_t2_to_t1"]),
        ("SYNNET_API_KEYS", "one, two,", "api_keys", ["one", "two"]),
        ("SYNNET_API_KEYS", "", "api_keys", []),
        ("SYNNET_CHANNELS_LAST", "false", "channels_last", False),
        ("SYNNET_MAX_BATCH_DELAY_S", "0.02", "max_batch_delay_s", 0.02),
        ("SYNNET_MAX_DECODED_BYTES_IN_FLIGHT", "5000000", "max_decoded_bytes_in_flight", 5_000_000),
        ("SYNNET_MAX_FORM_PARTS", "4", "max_form_parts", 4),
        ("SYNNET_MODEL_STORE", "/models", "model_store", Path("/models")),
        ("SYNNET_MODEL_STORE", "", "model_store", None),
        ("SYNNET_API_KEY", "k", "api_key", "k"),
    ],
)
def test_environment_strings_become_typed_values(clean_env, variable, text, field, value) -> None:
    clean_env.setenv("SYNNET_MODEL_FORMAT", "export")  # SYNNET_COMPILE needs it
    clean_env.setenv(variable, text)
    assert getattr(read(Settings), field) == value


def test_a_bad_value_names_its_variable_and_what_it_got(clean_env) -> None:
    clean_env.setenv("SYNNET_PORT", "70000")
    clean_env.setenv("SYNNET_DEVICE", "tpu")
    with pytest.raises(SettingsError) as bad:
        get_settings()
    assert bad.value.code == "bad_setting"
    assert "SYNNET_PORT: Input should be less than or equal to 65535 (got '70000')" in str(bad.value)
    assert "SYNNET_DEVICE: Input should be 'auto', 'cpu' or 'cuda' (got 'tpu')" in str(bad.value)


def test_a_rule_across_settings_names_both(clean_env) -> None:
    clean_env.setenv("SYNNET_COMPILE", "true")
    with pytest.raises(SettingsError, match=r"^SYNNET_COMPILE needs SYNNET_MODEL_FORMAT=export"):
        read(Settings)


def test_a_secret_is_never_echoed() -> None:
    with pytest.raises(ValidationError) as bad:
        Settings(api_keys=12345)
    (line,) = describe(bad.value, Settings)
    assert line.startswith("SYNNET_API_KEYS:") and "12345" not in line


def test_a_reader_of_one_group_ignores_bad_values_of_the_others(clean_env, tmp_path) -> None:
    clean_env.setenv("SYNNET_PORT", "not a port")
    clean_env.setenv("SYNNET_MODEL_STORE", str(tmp_path))
    assert read(StoreSettings).api_store() == tmp_path == default_store()
    with pytest.raises(SettingsError, match="SYNNET_PORT"):
        read(Settings)
