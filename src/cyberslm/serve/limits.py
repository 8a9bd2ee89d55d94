"""What keeps the server safe under bad input and load: API key, body size, bounded work, audit log.

`Guard` is a plain ASGI middleware that runs before FastAPI sees a request: it checks the API key
(before reading any body, so strangers cannot make the server buffer megabytes), buffers the body
up to a byte limit (413 beyond it), and records metrics and the optional audit line.
`Limiter` runs the blocking model calls on a fixed pool of threads with a bounded queue: a request
that finds the queue full gets 429 with Retry-After at once instead of piling up, and one that
waits or runs longer than the timeout gets 504.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from cyberslm.io import JsonlAppender
from cyberslm.serve.metrics import Metrics

T = TypeVar("T")


class ApiError(Exception):
    """An error answered as an OpenAI-style JSON body: {"error": {"message", "type", "code"}}."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.status}}


def overloaded() -> ApiError:
    return ApiError(429, "server busy: too many requests in flight, retry shortly", "server_overloaded",
                    {"Retry-After": "1"})


class Limiter:
    """A pool of `concurrency` worker threads and room for `queue` more waiting requests."""

    def __init__(self, concurrency: int, queue: int, timeout_s: float):
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="cyberslm-serve")
        self._slots = threading.BoundedSemaphore(concurrency + queue)

    def try_acquire(self) -> bool:
        """Take a slot without waiting; the caller must `release()` it. False when full."""
        return self._slots.acquire(blocking=False)

    def release(self) -> None:
        self._slots.release()

    def submit(self, fn: Callable[..., T], *args: Any):
        """Run `fn` in the pool holding a slot until it really finishes (even after a timeout)."""
        if not self.try_acquire():
            raise overloaded()
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self.release()
            raise
        future.add_done_callback(lambda _: self.release())
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Await `fn(*args)` from the pool; 429 when full, 504 after `timeout_s`."""
        future = self.submit(fn, *args)
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.timeout_s)
        except TimeoutError:
            future.cancel()  # drops it if still queued; a running model call finishes in the background
            raise ApiError(504, f"request timed out after {self.timeout_s:g} s", "timeout") from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def _send_json(send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """ASGI middleware: auth on /v1 and /metrics, body size limit, metrics, audit log."""

    def __init__(self, app, *, api_key: str | None, max_body_bytes: int, upload_path: str,
                 max_upload_bytes: int, metrics: Metrics, audit: JsonlAppender | None):
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.upload_path = upload_path
        self.max_upload_bytes = max_upload_bytes
        self.metrics = metrics
        self.audit = audit

    def _authorized(self, scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and secrets.compare_digest(token.strip(), self.api_key)
        return False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        status = 500
        body = b""

        async def send_tracking(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        protected = path.startswith("/v1/") or path == "/metrics"
        self.metrics.in_flight += 1
        try:
            if protected and self.api_key and not self._authorized(scope):
                error = ApiError(401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                                 "authentication_error", {"WWW-Authenticate": "Bearer"})
                await _send_json(send_tracking, 401, error.body(), error.headers)
                return
            limit = self.max_upload_bytes if path == self.upload_path else self.max_body_bytes
            body, too_big = await self._read_body(scope, receive, limit)
            if too_big:
                error = ApiError(413, f"request body larger than the limit of {limit} bytes",
                                 "request_too_large")
                await _send_json(send_tracking, 413, error.body(), {"Connection": "close"})
                return
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()  # later calls wait for the client to disconnect

            await self.app(scope, replay, send_tracking)
        finally:
            self.metrics.in_flight -= 1
            route = getattr(scope.get("route"), "path", None) or ("static" if not protected else "unmatched")
            seconds = time.perf_counter() - started
            self.metrics.observe(route, scope["method"], status, seconds)
            if status in (401, 413):
                self.metrics.error(route, "authentication_error" if status == 401 else "request_too_large")
            if self.audit is not None and protected:
                self.audit.write({
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "client": (scope.get("client") or ("?",))[0],
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "input_bytes": len(body),
                    "input_sha256": hashlib.sha256(body).hexdigest(),
                    "latency_ms": round(seconds * 1000, 2),
                })

    @staticmethod
    async def _read_body(scope, receive, limit: int) -> tuple[bytes, bool]:
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return b"", True
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return b"", False
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), False
