"""The FastAPI app behind `cyberslm serve`: OpenAI-compatible chat, triage, ask, knowledge, page.

Routes (all /v1 routes and /metrics need `Authorization: Bearer KEY` when a key is set):
    POST /v1/chat/completions   OpenAI chat completions, with server-sent-event streaming
    GET  /v1/models             the chat model, in the OpenAI list format
    POST /v1/triage             CVE descriptions -> top-k CWEs (TriageResult.to_dict() objects)
    POST /v1/triage/feed        a raw NVD / CVE JSON 5 feed body (.json, .gz, .zip) -> the same
    POST /v1/ask                a CTI question -> Answer.to_dict() with cited knowledge entries
    GET  /v1/kb/{id}            one knowledge entry (CWE-79, T1059.001, CAPEC-66, ...)
    GET  /healthz               liveness and what is loaded (always open)
    GET  /metrics               Prometheus text format
    GET  /                      the analyst page (serve/static)

Every model call runs on the Limiter's threads, so the event loop keeps answering (429, 504,
/healthz) while models work. The server itself opens no outbound connection; only an `openai:`
backend the user points elsewhere does, which is their explicit choice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from cyberslm.errors import CyberslmError
from cyberslm.io import JsonlAppender
from cyberslm.models.backend import Backend, GenerationConfig, load_backend
from cyberslm.serve.limits import ApiError, Guard, Limiter
from cyberslm.serve.metrics import Metrics
from cyberslm.serve.schemas import AskRequest, ChatRequest, TriageRequest

log = logging.getLogger("cyberslm.serve")
STATIC = Path(__file__).parent / "static"
FEED_PATH = "/v1/triage/feed"
FEED_SUFFIXES = (".json", ".json.gz", ".gz", ".zip")
KB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,31}$")
# The page may load only its own files: no CDN, no outbound request even if the page were tampered with.
PAGE_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'"


@dataclass
class ServeSettings:
    """Everything `cyberslm serve` can set; the defaults are the safe ones."""

    model: str | None = None  # chat backend spec; None: /v1/chat/completions answers 503
    triage_model: str | None = None  # None: the embedded CPU classifier
    ask_model: str | None = None  # None: the retrieval answerer over the local knowledge
    api_key: str | None = None
    max_body_bytes: int = 1 << 20
    max_upload_bytes: int = 64 << 20
    max_feed_records: int = 2000
    max_tokens: int = 1024  # upper bound on max_tokens a request may ask for
    default_max_tokens: int = 256
    concurrency: int = 2  # worker threads running model calls (the sandbox has 2 cores)
    queue: int = 64  # requests allowed to wait for a worker before 429
    timeout_s: float = 120.0
    audit_log: Path | None = None
    warmup: bool = True  # load the classifier and knowledge before the first request


def _count_tokens(backend: Backend, text: str) -> int:
    """Completion tokens by the backend's own tokenizer when it has one, else whitespace words."""
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "encode"):
        return len(tokenizer.encode(text, add_special_tokens=False))
    return len(text.split())


def _finish_reason(backend: Backend, completion_tokens: int, max_tokens: int) -> str:
    """'length' when a tokenizer-backed model used its whole budget; backends without a tokenizer
    (the classifier) write a complete answer, so theirs is always 'stop'."""
    has_tokenizer = getattr(backend, "tokenizer", None) is not None
    return "length" if has_tokenizer and completion_tokens >= max_tokens else "stop"


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    cuts = [text.find(s) for s in stops if s and s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _triage(items: list, k: int, model: str | None) -> list[dict]:
    from cyberslm.triage import triage

    return [result.to_dict() for result in triage(items, k=k, model=model)]


def _triage_feed(body: bytes, name: str, k: int, model: str | None, limit: int) -> dict:
    """Parse a feed body with the project's real readers, then triage its first `limit` records."""
    from cyberslm.data.reader import read_cves

    suffix = next((s for s in FEED_SUFFIXES if name.lower().endswith(s)), ".json")
    with tempfile.TemporaryDirectory(prefix="cyberslm-feed-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(body)
        records, truncated = [], False
        for record in read_cves(path, skip_bad=True):
            if not record.description:
                continue
            if len(records) == limit:
                truncated = True
                break
            record.source_file = name
            records.append(record)
    if not records:
        raise CyberslmError(f"{name}: no CVE records with a description found in this feed")
    return {"results": _triage(records, k, model), "records": len(records), "truncated": truncated}


def _ask(question: str, options: dict[str, str] | None, model: str | None, k: int) -> dict:
    from cyberslm.ask import answer

    return answer(question, options=options, model=model, k=k).to_dict()


def _kb_entry(entry_id: str) -> dict | None:
    from cyberslm.knowledge import load_knowledge

    entry = load_knowledge().get(entry_id)
    return dataclasses.asdict(entry) if entry is not None else None


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _route_of(request: Request) -> str:
    return getattr(request.scope.get("route"), "path", None) or request.url.path


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


class ChatService:
    """One loaded chat backend; calls are serialized because a model is not safe to share across threads."""

    def __init__(self, backend: Backend | None, spec: str | None):
        self.backend = backend
        self.model_id = spec or (backend.name if backend else None)
        self.lock = threading.Lock()

    def generate(self, conversation: list[dict], config: GenerationConfig) -> str:
        with self.lock:
            return self.backend.generate([conversation], config)[0]


def create_app(settings: ServeSettings | None = None, chat_backend: Backend | None = None) -> FastAPI:
    """Build the app. The chat backend is loaded here (not on the first request), so a bad --model
    fails at start with one line instead of on every request."""
    settings = settings or ServeSettings()
    if chat_backend is None and settings.model:
        chat_backend = load_backend(settings.model)
    chat = ChatService(chat_backend, settings.model)
    metrics = Metrics()
    limiter = Limiter(settings.concurrency, settings.queue, settings.timeout_s)
    audit = JsonlAppender(settings.audit_log) if settings.audit_log else None

    if settings.warmup:  # first requests should not pay for loading the classifier and knowledge
        for warm in (lambda: _triage(["SQL injection in the login form."], 1, settings.triage_model),
                     lambda: _kb_entry("CWE-79")):
            try:
                warm()
            except Exception as exc:  # a missing optional part must not stop the other routes
                log.warning("warm-up skipped: %s", exc)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        limiter.shutdown()
        if audit is not None:
            audit.close()

    app = FastAPI(title="cyberslm", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.settings, app.state.limiter, app.state.metrics, app.state.chat = settings, limiter, metrics, chat
    app.add_middleware(Guard, api_key=settings.api_key, max_body_bytes=settings.max_body_bytes,
                       upload_path=FEED_PATH, max_upload_bytes=settings.max_upload_bytes,
                       metrics=metrics, audit=audit)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        metrics.error(_route_of(request), exc.type)
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return await _api_error(request, ApiError(422, _validation_message(exc)))

    @app.exception_handler(CyberslmError)
    async def _bad_input(request: Request, exc: CyberslmError):
        return await _api_error(request, ApiError(400, str(exc)))

    @app.exception_handler(ImportError)
    async def _missing_part(request: Request, exc: ImportError):
        return await _api_error(request, ApiError(503, f"this route needs a part that is not installed: {exc}",
                                                  "unavailable"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return await _api_error(request, ApiError(exc.status_code, str(exc.detail), "not_found"
                                                  if exc.status_code == 404 else "invalid_request_error"))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("internal error on %s", request.url.path)
        metrics.error(_route_of(request), "internal_error")
        return JSONResponse({"error": {"message": f"internal error ({type(exc).__name__})",
                                       "type": "internal_error", "code": 500}}, status_code=500)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "chat_model": chat.model_id,
                "triage_model": settings.triage_model or "classifier:default",
                "ask_model": settings.ask_model or "retrieval", "auth": bool(settings.api_key)}

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> dict:
        data = [{"id": chat.model_id, "object": "model", "created": 0, "owned_by": "cyberslm"}] \
            if chat.backend else []
        return {"object": "list", "data": data}

    @app.post("/v1/triage")
    async def triage_route(req: TriageRequest) -> dict:
        items: list[Any] = req.items()
        if req.ids:
            from cyberslm.data.cve import CveRecord

            items = [CveRecord(id=i, description=d) for i, d in zip(req.ids, items, strict=True)]
        results = await limiter.run(_triage, items, req.k, settings.triage_model)
        return {"results": results}

    @app.post(FEED_PATH)
    async def triage_feed(request: Request, name: str = "feed.json", k: int = 3) -> dict:
        if not 1 <= k <= 20:
            raise ApiError(422, "invalid request: k: must be between 1 and 20")
        body = await request.body()
        if not body:
            raise ApiError(422, "invalid request: empty body; send the feed file as the request body")
        return await limiter.run(_triage_feed, body, Path(name).name[:128], k, settings.triage_model,
                                 settings.max_feed_records)

    @app.post("/v1/ask")
    async def ask_route(req: AskRequest) -> dict:
        return await limiter.run(_ask, req.question, req.options, settings.ask_model, req.k)

    @app.get("/v1/kb/{entry_id}")
    async def kb_route(entry_id: str) -> dict:
        if not KB_ID.match(entry_id):
            raise ApiError(422, "invalid request: id: expected a knowledge id such as CWE-79 or T1059.001")
        entry = await limiter.run(_kb_entry, entry_id)
        if entry is None:
            raise ApiError(404, f"no knowledge entry {entry_id!r}", "not_found")
        return entry

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest):
        if chat.backend is None:
            raise ApiError(503, "no chat model loaded: start the server with --model SPEC "
                                "(e.g. --model hf:smollm2); /v1/triage and /v1/ask work without one",
                           "model_not_loaded")
        max_tokens = req.max_completion_tokens or req.max_tokens or settings.default_max_tokens
        if max_tokens > settings.max_tokens:
            raise ApiError(422, f"invalid request: max_tokens: {max_tokens} is above this server's "
                                f"limit of {settings.max_tokens}")
        config = GenerationConfig(max_new_tokens=max_tokens, temperature=req.temperature or 0.0,
                                  top_p=req.top_p or 1.0, seed=req.seed, stop=list(req.stop or []))
        conversation = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                        for m in req.messages]
        prompt_tokens = sum(_count_tokens(chat.backend, m["content"]) for m in conversation)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(
                _stream(chat, limiter, metrics, conversation, config, completion_id, prompt_tokens,
                        include_usage, settings.timeout_s),
                media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        text = await limiter.run(chat.generate, conversation, config)
        text, stopped = _cut_at_stop(text, config.stop)
        completion_tokens = _count_tokens(chat.backend, text)
        metrics.add_tokens(chat.model_id, completion_tokens)
        finish = "stop" if stopped else _finish_reason(chat.backend, completion_tokens, max_tokens)
        return {"id": completion_id, "object": "chat.completion", "created": int(time.time()),
                "model": chat.model_id,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "logprobs": None, "finish_reason": finish}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_CSP})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _stream(chat: ChatService, limiter: Limiter, metrics: Metrics, conversation: list[dict],
            config: GenerationConfig, completion_id: str, prompt_tokens: int, include_usage: bool,
            timeout_s: float) -> AsyncIterator[str]:
    """Start generation now (429 before any byte is sent) and return the SSE event iterator."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            with chat.lock:
                for piece in chat.backend.stream(conversation, config):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, ("piece", piece))
        except Exception as exc:  # reported to the client as an SSE error event
            loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, ("end", None))

    limiter.submit(produce)
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": chat.model_id,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if usage is not None:
            body["choices"], body["usage"] = [], usage
        return f"data: {json.dumps(body)}\n\n"

    async def events() -> AsyncIterator[str]:
        deadline = loop.time() + timeout_s
        text, hit_stop = "", False
        try:
            yield chunk({"role": "assistant", "content": ""})
            while True:
                try:
                    kind, value = await asyncio.wait_for(queue.get(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    error = ApiError(504, f"request timed out after {timeout_s:g} s", "timeout")
                    yield f"data: {json.dumps(error.body())}\n\n"
                    return
                if kind == "end":
                    break
                if kind == "error":
                    log.error("chat stream failed: %s", value)
                    error = ApiError(500, f"generation failed ({type(value).__name__})", "internal_error")
                    yield f"data: {json.dumps(error.body())}\n\n"
                    return
                cut, stopped = _cut_at_stop(text + value, config.stop)
                piece, text = cut[len(text):], cut
                if piece:
                    yield chunk({"content": piece})
                if stopped:
                    stop.set()
                    hit_stop = True
                    break
            completion_tokens = _count_tokens(chat.backend, text)
            metrics.add_tokens(chat.model_id, completion_tokens)
            finish = "stop" if hit_stop else _finish_reason(chat.backend, completion_tokens, config.max_new_tokens)
            yield chunk({}, finish)
            if include_usage:
                yield chunk({}, usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                       "total_tokens": prompt_tokens + completion_tokens})
            yield "data: [DONE]\n\n"
        finally:
            stop.set()  # the client left or we are done: the producer stops at its next piece

    return events()
