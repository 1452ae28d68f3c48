"""The product's ``SYNNET_*`` settings, one class per concern.

Each group is a settings class of its own, read from the environment (``SYNNET_`` + the field in
upper case), so a reader that needs one concern reads only that one: the Python API the store,
the ``synnet`` command its client key, and a bad value elsewhere does not stop them.
:class:`synnet.settings.Settings` is their union, the service's whole configuration. The names are
flat, not nested under the group, because the variable names are what operators already set.

Every field says its type, its default and, in its description, what it does; the docs' tables
are generated from them (``python -m synnet.settings``). ``shown`` is the default as the docs
print it where the value itself (None) means "decided at start".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from synnet.imageio.write import DEFAULT_GZIP_LEVEL

# The Python API and the synnet command serve the repository's bundled models when no store is set.
BUNDLED_STORE = Path(__file__).resolve().parent.parent.parent / "model_store"
# The service's store when none is set: model_store/ in its working directory, as it always was.
SERVICE_STORE = Path("model_store")
# The batch limit's default is synnet.store.default_batch_size. Waiting for company only adds latency
# on CPU (slices that arrive during a forward pass still share the next one); a GPU wants full batches.
DEFAULT_BATCH_DELAY_S = {"cpu": 0.0, "cuda": 0.01}
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


def setting(default: Any = None, description: str = "", *, shown: str | None = None, secret: bool = False, **kw: Any):
    """A field with the docs' extras: ``shown`` (the default as printed) and ``secret`` (never echoed in errors)."""
    extra = {"shown": shown, "secret": secret}
    if "default_factory" in kw:
        return Field(description=description, json_schema_extra=extra, **kw)
    return Field(default=default, description=description, json_schema_extra=extra, **kw)


def _comma_list(value: object) -> object:
    """``"a, b,"`` → ``["a", "b"]``: the form of every list setting."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


# A folder setting whose empty value means unset (a Compose file substitutes an unset variable as empty).
FolderOrUnset = Annotated[Path | None, BeforeValidator(lambda value: None if value == "" else value)]


class SettingsGroup(BaseSettings):
    """One concern's settings; ``title`` heads its table in the docs."""

    model_config = SettingsConfigDict(env_prefix="SYNNET_", env_file=None, extra="ignore", protected_namespaces=())
    title: ClassVar[str] = ""


class StoreSettings(SettingsGroup):
    """Where the models are; the Python API and the ``synnet`` command read this group alone."""

    title: ClassVar[str] = "Models"

    model_store: FolderOrUnset = setting(
        None,
        "folder of `<name>/{manifest.json, model.pt, model.pt2}`; unset or empty: `model_store/` in the "
        "service's working directory, the bundled models for the Python API and the `synnet` command",
        shown="`model_store`",
    )

    def service_store(self) -> Path:
        """The folder the service serves."""
        return self.model_store or SERVICE_STORE

    def api_store(self) -> Path:
        """The folder the Python API and the ``synnet`` command load from."""
        return self.model_store or BUNDLED_STORE


class ServingSettings(SettingsGroup):
    """Hardware, file format, compilation and precision: together they decide what each forward costs."""

    title: ClassVar[str] = "How the networks run"

    device: Literal["auto", "cpu", "cuda"] = setting(
        "auto", "`auto` (CUDA when present), `cpu`, `cuda` (no GPU is then an error at start)"
    )
    model_format: Literal["torchscript", "export"] = setting(
        "torchscript",
        "`torchscript` serves each model's `model.pt`, `export` its `model.pt2` (the same network as a "
        "`torch.export` program, the same voxels); see "
        "[Model formats, compilation and precision](#model-formats-compilation-and-precision)",
    )
    compile: Annotated[bool | list[str], NoDecode] = setting(
        False,
        "serve exported programs through `torch.compile` (inductor), compiled while the service starts: "
        "`true` (every model), `false`, or comma-separated model names; needs `SYNNET_MODEL_FORMAT=export`",
    )
    precision: Literal["fp32", "bf16"] = setting(
        "fp32",
        "`bf16`: bf16 autocast, accepted only where the CPU has AVX512-BF16 or AMX (or on a GPU) and with "
        "`SYNNET_MODEL_FORMAT=export`, and applied only to the models whose recorded bf16 cost is small "
        "enough; the others serve fp32",
    )
    autocast_dtype: Literal["none", "bf16", "fp16"] = setting(
        "none", "`bf16` or `fp16` mixed precision, honoured on CUDA only"
    )
    channels_last: bool | None = setting(
        None,
        "feed the network NHWC tensors (about 1.4× faster on CPU; 3–28 % slower on an H200 with the "
        "exported NCHW weights)",
        shown="`true` on CPU, `false` on CUDA",
    )
    torch_threads: int | None = setting(
        None, "intra-op threads (set 1 per replica when several share a host)", shown="torch's default", ge=1
    )

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_models(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        return _comma_list(value)

    @model_validator(mode="after")
    def _compile_needs_programs(self) -> ServingSettings:
        if self.compile and self.model_format != "export":
            raise ValueError(
                "SYNNET_COMPILE needs SYNNET_MODEL_FORMAT=export: torch.compile traces the exported "
                "programs (model.pt2), it cannot trace TorchScript"
            )
        return self


class SynthesisSettings(SettingsGroup):
    """Speed levers of each request: they change its cost, not (beyond float rounding) its voxels."""

    title: ClassVar[str] = "What each synthesis does"

    crop_to_brain: bool = setting(True, "run each volume's brain bounding box only")
    nifti_gzip_level: int = setting(
        DEFAULT_GZIP_LEVEL,
        "zlib level of `.nii.gz` results, deflated by zlib-ng on two threads (level 6: 4 % smaller, slower)",
        ge=0,
        le=9,
    )


class BatchingSettings(SettingsGroup):
    """How slices of concurrent requests share forward passes; the defaults depend on the device."""

    title: ClassVar[str] = "Batching"

    max_batch_size: int | None = setting(None, "most slices per forward pass", shown="4 on CPU, 32 on CUDA", ge=1)
    max_batch_delay_s: float | None = setting(
        None,
        "how long a batch waits for slices of other requests (on CPU waiting only adds latency: slices that "
        "arrive during a forward pass share the next one anyway)",
        shown="0 on CPU, `0.01` on CUDA",
        ge=0.0,
    )

    def batch_size_for(self, device_type: str) -> int:
        """The batch limit on ``device_type`` (``"cpu"`` or ``"cuda"``): the setting, else a device default."""
        import torch  # the settings are read without torch: the synnet command's client needs none

        from synnet.store import default_batch_size

        return self.max_batch_size or default_batch_size(torch.device(device_type))

    def batch_delay_for(self, device_type: str) -> float:
        """The batching delay on ``device_type``: the setting, else a device default."""
        if self.max_batch_delay_s is not None:
            return self.max_batch_delay_s
        return DEFAULT_BATCH_DELAY_S.get(device_type, DEFAULT_BATCH_DELAY_S["cpu"])


class LimitsSettings(SettingsGroup):
    """What one process admits, so that a flood of uploads is refused before it costs memory."""

    title: ClassVar[str] = "Admission and limits"

    max_queued_requests: int = setting(32, "syntheses admitted at once; the next gets 503", ge=1)
    retry_after_s: int = setting(1, "`Retry-After` of a 503", ge=0)
    request_timeout_s: float = setting(120.0, "a synthesis that takes longer gets 504", gt=0.0)
    upload_timeout_s: float = setting(
        60.0, "an upload that takes longer to arrive gets 408 (it holds an admission slot meanwhile)", gt=0.0
    )
    max_upload_bytes: int = setting(
        256 * 1024 * 1024, "larger request bodies get 413 before they are read", shown="`268435456` (256 MiB)", ge=1024
    )
    max_form_parts: int = setting(
        16, "most file parts, and apart most text fields, in one multipart body; more gets 400 `bad_request`", ge=1
    )
    max_decoded_bytes_in_flight: int | None = setting(
        None,
        "decoded bytes the admitted requests' images may declare at once; the next gets 503 "
        "(see [Memory](#memory-drain-and-disconnects))",
        shown="an eighth of the host's memory (≥ 1 GiB)",
        ge=1,
    )

    def decoded_budget_bytes(self) -> int:
        """The decoded-bytes budget of admission: the setting, else an eighth of physical memory."""
        return self.max_decoded_bytes_in_flight or default_decoded_budget()


class AuthSettings(SettingsGroup):
    """The keys on both sides: those the service accepts, and the one the ``synnet`` command sends."""

    title: ClassVar[str] = "API keys"

    api_keys: Annotated[list[str], NoDecode] = setting(
        description="the service's accepted `X-API-Key` values, comma-separated; empty: no auth",
        default_factory=list,
        shown="empty",
        secret=True,
    )
    api_key: str | None = setting(
        None,
        "the key the `synnet` command sends with `--server` (its `--api-key` overrides it)",
        shown="none",
        secret=True,
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        return _comma_list(value)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)


class ServerSettings(SettingsGroup):
    """The uvicorn process: where it listens, what it logs, how long it drains on SIGTERM."""

    title: ClassVar[str] = "The server process"

    host: str = setting("127.0.0.1", "where uvicorn listens (`--host` overrides it)")
    port: int = setting(8000, "the port uvicorn listens on (`--port` overrides it)", ge=0, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = setting(
        "info", "`critical`, `error`, `warning`, `info`, `debug`"
    )
    drain_timeout_s: float = setting(
        60.0,
        "after SIGTERM, how long syntheses in flight may take to finish (a BraTS volume takes about 3 s on "
        "2 CPU cores)",
        ge=0.0,
    )


def default_decoded_budget() -> int:
    """An eighth of the host's physical memory, at least 1 GiB (2 GiB where it cannot be read).

    The synthesis of admitted images needs up to about 2.4 times their budget again, and the
    uploads themselves are held too (docs/service.md has the formula): an eighth keeps the worst
    case of the default settings within a 24 GB host.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3
    return max(total // 8, 1024**3)
