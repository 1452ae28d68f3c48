"""``--server URL``: the same work sent to a running service (``POST /synthesize``), the same result back.

:class:`RemoteSynthesizer` has :class:`synnet.Synthesizer`'s ``synthesize`` and gives a
:class:`synnet.api.SynthesisResult` built from the JSON answer (every target, the models, the
metrics and the input warnings in one response; the ``download=1`` form carries one target and no
warnings). The output format is asked for explicitly (NIfTI unless told), so a PNG input gives a
NIfTI file as it does locally.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from synnet.api import SynthesisResult
from synnet.imageio import EncodedImage, OutputFormat
from synnet.imageio.nibabel_io import to_nibabel
from synnet.input_checks import InputWarning
from synnet.modalities import Modality, format_modalities, parse_modalities, parse_modality
from synnet.scores import MetricReport
from synnet.settings import AuthSettings, read

TIMEOUT_S = 600.0


class RemoteError(RuntimeError):
    """The service could not be reached, or answered with an error (its ``error`` code kept)."""

    def __init__(self, message: str, code: str = "server_error") -> None:
        super().__init__(message)
        self.code = code


class RemoteSynthesizer:
    """A client of a running ``python -m service`` with the interface of :class:`synnet.Synthesizer`.

    Args:
        url: the service's base URL, e.g. ``http://127.0.0.1:8000``.
        api_key: sent as ``X-API-Key``; None takes ``$SYNNET_API_KEY`` (no key when unset).
    """

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        key = api_key if api_key is not None else read(AuthSettings).api_key
        headers = {"X-API-Key": key} if key else {}
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def synthesize(
        self,
        sources: Mapping[str | Modality, str | os.PathLike[str]],
        dst: str | Modality | Sequence[str | Modality],
        truths: Mapping[str | Modality, str | os.PathLike[str]] | None = None,
        *,
        mask: str | os.PathLike[str] | None = None,
        format: OutputFormat = "nifti",
    ) -> SynthesisResult:
        """Send the source files (paths), truths and mask, and return what the service synthesized."""
        src = parse_modalities([str(k) for k in sources])
        targets = parse_modalities(dst if isinstance(dst, str) else [str(d) for d in dst])
        files = [(m.value, _file(path)) for m, path in zip(src, sources.values(), strict=True)]
        files += [(f"truth_{parse_modality(k).value}", _file(path)) for k, path in (truths or {}).items()]
        files += [("mask", _file(mask))] if mask is not None else []
        params = {"src": format_modalities(src), "dst": format_modalities(targets), "format": format}
        body = self._request("POST", "/synthesize", params=params, files=files)
        result = SynthesisResult(images={}, models={}, seconds=float(body["seconds"]))
        for name, target in body["targets"].items():
            modality = parse_modality(name)
            payload = base64.b64decode(target["data"])
            extension = target["filename"].removeprefix(f"synthetic_{modality.value}")
            result.files[modality] = EncodedImage(payload, target["media_type"], extension)
            if target["format"] == "nifti":
                result.images[modality] = to_nibabel(payload)
            result.models[modality] = target["model"]
            if target.get("metrics"):
                result.metrics[modality] = MetricReport.model_validate(target["metrics"])
        result.warnings = [InputWarning(w["code"], w["message"]) for w in body.get("warnings", [])]
        return result

    def models(self) -> dict[str, object]:
        """``GET /models``: the served models, their configurations and the unavailable ones."""
        return self._request("GET", "/models")

    def _request(self, method: str, path: str, **kwargs: object) -> dict:
        try:
            response = self.client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise RemoteError(f"{self.url}{path}: {exc}", code="unreachable") from None
        if response.status_code != 200:
            try:
                error = response.json()
                raise RemoteError(f"{response.status_code} {error['detail']}", code=error["error"])
            except (ValueError, KeyError):
                raise RemoteError(f"{response.status_code} {response.text[:300]}") from None
        return response.json()


def _file(path: str | os.PathLike[str]) -> tuple[str, bytes]:
    path = Path(path)
    return path.name, path.read_bytes()
