"""The service's error vocabulary and how every error becomes a JSON response.

Bad input anywhere in the project raises a :class:`synnet.errors.SynnetError` with a stable
``code``; here each code gets its HTTP status, and every error body has the same form,
``{"error": code, "detail": message}``, so clients can branch on ``error`` and show ``detail``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from synnet.errors import SynnetError
from synnet.routing import NoModelError

logger = logging.getLogger(__name__)


class MissingPartError(SynnetError):
    code = "missing_part"


class PayloadTooLargeError(SynnetError):
    code = "payload_too_large"


class QueueFullError(SynnetError):
    """Too many syntheses admitted at once; carries the Retry-After hint."""

    code = "queue_full"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotReadyError(SynnetError):
    code = "not_ready"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SynthesisTimeoutError(SynnetError):
    code = "timeout"


class UnauthorizedError(SynnetError):
    code = "unauthorized"


# Codes not listed answer 422: the request was understood but its content cannot be used.
STATUS_BY_CODE: dict[str, int] = {
    "unsupported_format": 415,
    "unsupported_media_type": 415,
    "too_large": 413,
    "payload_too_large": 413,
    "no_model": 404,
    "unauthorized": 401,
    "bad_request": 400,
    "upload_timeout": 408,
    "queue_full": 503,
    "not_ready": 503,
    "shutting_down": 503,
    "timeout": 504,
}


def status_for(error: SynnetError) -> int:
    return STATUS_BY_CODE.get(error.code, 422)


def error_body(code: str, detail: str, **extra: object) -> dict[str, object]:
    return {"error": code, "detail": detail, **extra}


def error_response(error: SynnetError) -> JSONResponse:
    """The JSON response for a user-facing error, with Retry-After / WWW-Authenticate where they apply."""
    headers: dict[str, str] = {}
    retry_after = getattr(error, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if isinstance(error, UnauthorizedError):
        headers["WWW-Authenticate"] = 'APIKey header="X-API-Key"'
    extra = {"available": error.available} if isinstance(error, NoModelError) else {}
    return JSONResponse(error_body(error.code, error.detail, **extra), status_code=status_for(error), headers=headers)


async def _synnet_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SynnetError)
    logger.info("%s %s -> %s: %s", request.method, request.url.path, exc.code, exc.detail)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for item in exc.errors():
        where = ".".join(str(part) for part in item.get("loc", ()))
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return JSONResponse(error_body("invalid_request", "; ".join(problems) or "invalid request"), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    """Map SynnetError, HTTP errors and parameter validation errors to the common error body.

    Unexpected exceptions are not handled here: :mod:`service.middleware` turns them into a 500
    carrying the request id, after logging the traceback.
    """
    app.add_exception_handler(SynnetError, _synnet_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
