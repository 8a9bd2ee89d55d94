"""`cyberslm serve`: the local OpenAI-compatible API and analyst page. FastAPI and uvicorn are
imported inside the command, so the rest of the CLI starts fast."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import typer

from cyberslm.errors import CyberslmError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost': addresses no other machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_command(
    model: str = typer.Option(None, "--model", "-m",
                              help="Chat backend for /v1/chat/completions: hf:smollm2, hf:./merged, "
                                   "vllm:./merged, openai:URL#name, classifier:default. "
                                   "Without it, chat answers 503."),
    triage_model: str = typer.Option(None, "--triage-model",
                                     help="Model for /v1/triage (default: the embedded CPU classifier)."),
    ask_model: str = typer.Option(None, "--ask-model",
                                  help="Model for /v1/ask (default: retrieval over the local knowledge)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs an API key."),
    port: int = typer.Option(8000, "--port", "-p"),
    api_key: str = typer.Option(None, "--api-key", envvar="CYBERSLM_API_KEY", show_envvar=True,
                                help="Require 'Authorization: Bearer KEY' on /v1 routes and /metrics."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Model calls running at once."),
    queue: int = typer.Option(64, "--queue", min=0, help="Requests that may wait; beyond this: 429."),
    timeout: float = typer.Option(120.0, "--timeout", min=0.1, help="Seconds per request before 504."),
    max_body_mb: float = typer.Option(1.0, "--max-body-mb", min=0.001, help="JSON body limit (413 beyond)."),
    max_upload_mb: float = typer.Option(64.0, "--max-upload-mb", min=0.001, help="Feed upload limit."),
    max_tokens: int = typer.Option(1024, "--max-tokens", min=1, help="Largest max_tokens a request may ask for."),
    audit_log: Path = typer.Option(None, "--audit-log",
                                   help="Append one JSON line per API request (time, client, route, "
                                        "input hash and length; never bodies or keys)."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Serve the OpenAI-compatible API, triage, ask and the analyst web page on 127.0.0.1."""
    if not is_loopback(host) and not api_key:
        raise CyberslmError(f"refusing to bind {host} without an API key: pass --api-key or set CYBERSLM_API_KEY")
    # The server never downloads: model specs resolve to local files only.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    import uvicorn

    from cyberslm.serve.app import ServeSettings, create_app

    settings = ServeSettings(
        model=model, triage_model=triage_model, ask_model=ask_model, api_key=api_key or None,
        concurrency=concurrency, queue=queue, timeout_s=timeout,
        max_body_bytes=int(max_body_mb * (1 << 20)), max_upload_bytes=int(max_upload_mb * (1 << 20)),
        max_tokens=max_tokens, default_max_tokens=min(256, max_tokens), audit_log=audit_log,
    )
    app = create_app(settings)
    typer.echo(f"cyberslm serving on http://{host}:{port}/ (chat model: {model or 'none'}; "
               f"auth: {'on' if api_key else 'off'})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                server_header=False, timeout_graceful_shutdown=5)
