"""Real servers for the serve tests: uvicorn on a loopback port in a background thread.

The SmolLM2 GGUF chat server is built once per session (the model loads once); the small
servers with tight limits reuse the same process-wide caches of the classifier and knowledge.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from cyberslm.serve.app import ServeSettings, create_app

API_KEY = "test-key-0123456789"


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1:<free port> until `stop()`."""

    def __init__(self, app):
        self.app = app
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start(settings: ServeSettings) -> LiveServer:
    return LiveServer(create_app(settings))


@pytest.fixture(scope="session")
def start_server():
    """A factory: settings -> LiveServer; the test stops it."""
    return start


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    """The default server, no key; its chat model is the CPU classifier (answers CVE-to-CWE prompts)."""
    live = start(ServeSettings(model="classifier:default", max_body_bytes=256 * 1024, max_tokens=64,
                               default_max_tokens=16))
    yield live
    live.stop()


@pytest.fixture(scope="session")
def lm_server() -> Iterator[LiveServer]:
    """The real SmolLM2-135M GGUF as chat model (loaded once per session; tests using it are `slow`)."""
    live = start(ServeSettings(model="hf:smollm2", max_tokens=64, default_max_tokens=16, warmup=False))
    yield live
    live.stop()


@pytest.fixture(scope="session")
def keyed_server() -> Iterator[LiveServer]:
    """A server with an API key and no chat model."""
    live = start(ServeSettings(api_key=API_KEY))
    live.api_key = API_KEY
    yield live
    live.stop()


@pytest.fixture
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c
