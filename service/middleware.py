"""Two small ASGI middlewares that every request passes through.

* :class:`RequestContextMiddleware` gives each request an id (echoed in ``X-Request-ID``),
  records its status and latency in Prometheus, and turns any unexpected exception into a 500
  whose body carries the request id but never a traceback — the traceback goes to the log,
  under the same id. It also watches the connection once the body has been read: when the
  client goes away, the request's task is cancelled (its queued slices leave the batcher, its
  admission slot frees) and the request is logged as one INFO line and counted under 499, as
  nginx does; a client gone mid-upload is counted the same way. A request the server itself
  cancels (the graceful-shutdown timeout) still gets a JSON 503, never uvicorn's text/plain 500.
* :class:`BodyLimitMiddleware` answers 413 before the body is read: at once when
  ``Content-Length`` is too large, and as soon as the streamed bytes pass the limit otherwise
  (chunked uploads), so an oversize upload is never held in memory.

Plain ASGI rather than ``BaseHTTPMiddleware``: they must see the body stream and must not buffer it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLargeError, error_body
from service.observability import ServiceMetrics

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CLIENT_CLOSED = 499  # nginx's status for a client that closed the connection before the answer


async def send_json(send: Send, status: int, body: dict[str, object], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestContextMiddleware:
    """Request id, access metrics and the last-resort 500 handler."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER.encode())
        request_id = incoming if incoming and _SAFE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        status = 500
        started = finished = gone = False
        began = time.perf_counter()
        task = asyncio.current_task()
        watcher: asyncio.Task[Message] | None = None

        async def watch_connection() -> Message:
            nonlocal gone
            message = await receive()
            if message["type"] == "http.disconnect" and not finished and task is not None:
                gone = True
                task.cancel()
            return message

        async def watching_receive() -> Message:
            nonlocal watcher, gone
            if watcher is not None:  # the body is read: the next message can only be the disconnect
                return await asyncio.shield(watcher)
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
            elif not message.get("more_body", False):
                watcher = asyncio.get_running_loop().create_task(watch_connection())
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, started, finished
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message = {**message, "headers": [*message.get("headers", []), id_header]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        try:
            await self.app(scope, watching_receive, send_with_id)
        except asyncio.CancelledError:
            if gone and task is not None:
                task.uncancel()  # our own cancellation: the request ends here
                status = self._client_gone(scope, request_id, began)
            elif started:
                raise
            else:  # cancelled by the server (graceful-shutdown timeout): still a JSON answer
                status = 503
                body = error_body("shutting_down", "the service shut down before this request finished; retry")
                await send_json(send, 503, body, [id_header, (b"retry-after", b"1"), (b"connection", b"close")])
        except Exception as exc:
            if gone or isinstance(exc, ClientDisconnect):  # what a vanished client makes the app raise
                status = self._client_gone(scope, request_id, began)
                return
            logger.exception("unhandled error in %s %s [request_id=%s]", scope["method"], scope["path"], request_id)
            if started:
                raise
            status = 500
            body = error_body(
                "internal_error",
                f"an unexpected error occurred; please report it with request id {request_id}",
                request_id=request_id,
            )
            await send_json(send, 500, body, [id_header])
        finally:
            if watcher is not None:
                watcher.cancel()
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], label, str(status)).inc()
            self.metrics.latency.labels(scope["method"], label).observe(time.perf_counter() - began)

    @staticmethod
    def _client_gone(scope: Scope, request_id: str, began: float) -> int:
        logger.info(
            "client disconnected: %s %s after %.2f s, its work cancelled [request_id=%s]",
            scope["method"], scope["path"], time.perf_counter() - began, request_id,
        )
        return CLIENT_CLOSED


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``, decided before they are read into memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self, what: str) -> PayloadTooLargeError:
        return PayloadTooLargeError(f"request body {what} the limit of {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            error = self._error(f"of {int(declared)} bytes (Content-Length) exceeds")
            await send_json(send, 413, error_body(error.code, error.detail), [(b"connection", b"close")])
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._error("exceeds")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLargeError as error:  # raised by counting_receive wherever the body was being read
            if started:
                raise
            await send_json(send, 413, error_body(error.code, error.detail), [(b"connection", b"close")])
