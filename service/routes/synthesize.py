"""``POST /synthesize``: upload sources, get the missing contrasts back."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request

from service.auth import Authorized
from service.deps import RuntimeDep
from service.pipeline import synthesize
from service.results import download_response
from service.schemas import SYNTHESIS_EXAMPLE, ErrorBody, OutputFormat, SynthesisResponse
from service.uploads import FormParts, read_form
from synnet.errors import SynnetError
from synnet.modalities import VALID_NAMES, Modality, check_disjoint, parse_modalities

router = APIRouter(tags=["synthesis"])

_FILE = {"type": "string", "format": "binary"}
_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "description": (
                    "One file part per source modality, named by the modality (aliases such as t1ce, t2w, "
                    "flair accepted); optional truth_<target> parts to get metrics; an optional mask "
                    "(nonzero = brain). NIfTI (.nii, .nii.gz; 2D or 3D) or PNG (8/16-bit grey)."
                ),
                "properties": {
                    **{m.value: _FILE for m in Modality},
                    **{f"truth_{m.value}": _FILE for m in Modality},
                    "mask": _FILE,
                },
            }
        }
    },
}
_DOWNLOAD_HEADERS = {
    "Content-Disposition": {"schema": {"type": "string"}, "description": 'attachment; filename="synthetic_T2.nii.gz"'},
    "X-Synnet-Model": {"schema": {"type": "string"}, "description": "the model that produced the file"},
    "X-Synnet-Target": {"schema": {"type": "string"}},
    "X-Synnet-Shape": {"schema": {"type": "string"}, "description": "e.g. 240,240,155"},
    "X-Synnet-PSNR": {"schema": {"type": "string"}, "description": "when truth was sent; 'inf' if identical"},
    "X-Synnet-SSIM": {"schema": {"type": "string"}},
    "X-Synnet-PSNR-Brain": {"schema": {"type": "string"}},
    "X-Synnet-SSIM-Brain": {"schema": {"type": "string"}},
    "X-Synnet-Identical": {"schema": {"type": "string"}, "description": "true when prediction equals truth"},
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "JSON by default. With `Accept: application/octet-stream` or `download=1` (one target only), "
            "the file itself, with the metrics in `X-Synnet-*` headers."
        ),
        "model": SynthesisResponse,
        "content": {
            "application/json": {"example": SYNTHESIS_EXAMPLE},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "example": "<the synthesized NIfTI, PNG or npy file>",
            },
        },
        "headers": _DOWNLOAD_HEADERS,
    },
    400: {"model": ErrorBody, "description": "malformed multipart body"},
    401: {"model": ErrorBody, "description": "API key missing or wrong (only when keys are configured)"},
    404: {"model": ErrorBody, "description": "no model serves this src → dst; `available` lists what does"},
    413: {
        "model": ErrorBody,
        "description": (
            "upload larger than the limit (answered before it is read), or images that declare more "
            "than the image limits or the decoded-bytes budget"
        ),
    },
    415: {"model": ErrorBody, "description": "not multipart, or a file that is neither NIfTI nor PNG"},
    422: {
        "model": ErrorBody,
        "description": (
            "unknown modality, missing part, overlapping src/dst, corrupt or truncated file, mismatched "
            "shapes or affines, 4D image, NaN/Inf values..."
        ),
    },
    503: {
        "model": ErrorBody,
        "description": (
            "too many requests or decoded bytes in progress, models still loading, or the service "
            "shutting down (Retry-After)"
        ),
    },
    504: {"model": ErrorBody, "description": "the synthesis did not finish within the request timeout"},
}


def wants_download(download: bool, accept: str | None) -> bool:
    if download:
        return True
    media = [item.split(";")[0].strip().lower() for item in (accept or "").split(",")]
    return "application/octet-stream" in media and "application/json" not in media


@router.post(
    "/synthesize",
    summary="Synthesize missing contrasts from uploaded source images",
    response_model=SynthesisResponse,
    responses=_RESPONSES,
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def synthesize_route(
    request: Request,
    runtime: RuntimeDep,
    _: Authorized,
    dst: Annotated[str, Query(description=f"target modalities, comma-separated ({VALID_NAMES})", examples=["T2"])],
    src: Annotated[
        str | None,
        Query(description="source modalities, comma-separated; default: the file parts sent", examples=["T1,T1c"]),
    ] = None,
    format: Annotated[
        OutputFormat | None, Query(description="output file format; default: the input's (NIfTI or PNG)")
    ] = None,
    download: Annotated[bool, Query(description="return the file itself (one target only)")] = False,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:  # SynthesisResponse (validated against the schema) or the file itself
    targets = parse_modalities(dst)
    sources = parse_modalities(src) if src is not None else None
    if sources is not None:
        check_disjoint(sources, targets)
    as_file = wants_download(download, accept)
    if as_file and len(targets) != 1:
        raise SynnetError(
            f"a file download holds one target, {len(targets)} were requested; drop download/Accept "
            "to get them all as JSON",
            code="download_needs_one_target",
        )
    runtime.require_store()
    # Admitted before the body is read: a busy service refuses at once instead of buffering uploads;
    # then the decoded bytes the files declare are reserved before any of them is decoded.
    async with runtime.admission.slot():
        parts = await _read_upload(request, runtime.settings.max_form_parts, runtime.settings.upload_timeout_s)
        async with runtime.admission.reserve(parts.declared_bytes()):
            outcome = await synthesize(runtime, sources, targets, parts, format)
    if as_file:
        return download_response(outcome.synthesis.targets[targets[0]])
    return outcome.to_response()


async def _read_upload(request: Request, max_parts: int, timeout_s: float) -> FormParts:
    """The form, or a 408 once ``timeout_s`` passes: a trickling upload must not hold its admission slot."""
    try:
        async with asyncio.timeout(timeout_s):
            return await read_form(request, max_parts)
    except TimeoutError:
        raise SynnetError(
            f"the upload did not arrive within {timeout_s:g} s; send it again over a faster link",
            code="upload_timeout",
        ) from None
