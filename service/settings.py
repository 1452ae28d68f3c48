"""Service configuration, read from ``SYNNET_*`` environment variables.

Settings are built on first use by :func:`get_settings` (never at import time) and cached, so a
process reads its environment once. Tests build their own :class:`Settings` and hand them to
``create_app(settings)`` or override the ``app_settings`` dependency.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import torch
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from synnet.imageio.write import DEFAULT_GZIP_LEVEL
from synnet.store import default_batch_size

# The batch limit's default is synnet.store.default_batch_size. Waiting for company only adds latency
# on CPU (slices that arrive during a forward pass still share the next one); a GPU wants full batches.
DEFAULT_BATCH_DELAY_S = {"cpu": 0.0, "cuda": 0.01}


class Settings(BaseSettings):
    """Everything an operator can set; each field is the env var ``SYNNET_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="SYNNET_", env_file=None, extra="ignore", protected_namespaces=())

    model_store: Path = Field(default=Path("model_store"), description="folder of <name>/{manifest.json, model.pt}")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    device: Literal["auto", "cpu", "cuda"] = "auto"
    autocast_dtype: Literal["none", "bf16", "fp16"] = Field(
        default="none", description="mixed precision on CUDA only; ignored on CPU (untested there)"
    )
    channels_last: bool | None = Field(
        default=None, description="feed the network NHWC tensors; None: synnet.store.default_channels_last"
    )
    model_format: Literal["torchscript", "export"] = Field(
        default="torchscript", description="serve model.pt (TorchScript) or model.pt2 (torch.export program)"
    )
    compile: Annotated[bool | list[str], NoDecode] = Field(
        default=False,
        description="serve exported programs through torch.compile, compiled at start-up: true (every model), "
        "false, or comma-separated model names",
    )
    precision: Literal["fp32", "bf16"] = Field(
        default="fp32",
        description="bf16: autocast where the CPU has AVX512-BF16 or AMX (or on a GPU), for the models whose "
        "recorded bf16 cost is small enough (synnet.precision); fp32 for the others",
    )
    torch_threads: int | None = Field(default=None, ge=1, description="intra-op threads; None keeps torch's default")
    crop_to_brain: bool = Field(default=True, description="run the network on the brain's bounding box only")
    nifti_gzip_level: int = Field(
        default=DEFAULT_GZIP_LEVEL,
        ge=0,
        le=9,
        description="zlib level of .nii.gz results (1: 4 % larger than 6, 1.3× faster)",
    )

    max_batch_size: int | None = Field(default=None, ge=1, description="slices per forward; None: 4 on CPU, 32 on CUDA")
    max_batch_delay_s: float | None = Field(
        default=None, ge=0.0, description="how long a batch waits for more slices; None: 0 on CPU, 0.01 s on CUDA"
    )
    max_queued_requests: int = Field(default=32, ge=1, description="syntheses admitted at once; more get 503")
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After sent with a 503")
    request_timeout_s: float = Field(default=120.0, gt=0.0, description="longest a synthesis may queue and run")
    upload_timeout_s: float = Field(
        default=60.0, gt=0.0, description="longest an upload may take to arrive; a slower one gets 408"
    )
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, ge=1024, description="largest request body accepted")
    max_form_parts: int = Field(default=16, ge=1)
    max_decoded_bytes_in_flight: int | None = Field(
        default=None,
        ge=1,
        description="bytes the admitted uploads may declare at once (decoded); None: an eighth of the host's memory",
    )
    drain_timeout_s: float = Field(
        default=60.0, ge=0.0, description="after SIGTERM, how long syntheses in flight may take to finish"
    )

    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="accepted X-API-Key values, comma-separated; empty turns auth off"
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_models(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off", ""):
            return text.lower() in ("true", "1", "yes", "on")
        return [name.strip() for name in text.split(",") if name.strip()]

    @model_validator(mode="after")
    def _compile_needs_programs(self) -> Settings:
        if self.compile and self.model_format != "export":
            raise ValueError(
                "SYNNET_COMPILE needs SYNNET_MODEL_FORMAT=export: torch.compile traces the exported "
                "programs (model.pt2), it cannot trace TorchScript"
            )
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    def decoded_budget_bytes(self) -> int:
        """The decoded-bytes budget of admission: the setting, else an eighth of physical memory."""
        return self.max_decoded_bytes_in_flight or default_decoded_budget()

    def batch_size_for(self, device_type: str) -> int:
        """The batch limit on ``device_type`` (``"cpu"`` or ``"cuda"``): the setting, else a device default."""
        return self.max_batch_size or default_batch_size(torch.device(device_type))

    def batch_delay_for(self, device_type: str) -> float:
        """The batching delay on ``device_type``: the setting, else a device default."""
        if self.max_batch_delay_s is not None:
            return self.max_batch_delay_s
        return DEFAULT_BATCH_DELAY_S.get(device_type, DEFAULT_BATCH_DELAY_S["cpu"])


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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
