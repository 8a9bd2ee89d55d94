"""Safety over real HTTP: API key, overload (429), timeouts (504), audit log, loopback-only start."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

import httpx
import openai
import pytest

from cyberslm.serve.app import ServeSettings
from cyberslm.serve.cli import is_loopback

SQLI = "SQL injection in login.php allows remote attackers to execute arbitrary SQL commands via the user parameter."


def test_api_key_required_on_v1_and_metrics_not_healthz(keyed_server):
    url, key = keyed_server.url, keyed_server.api_key
    assert httpx.get(url + "/healthz").status_code == 200
    assert httpx.get(url + "/").status_code == 200  # the page itself, where the key is entered
    for method, path in [("POST", "/v1/triage"), ("GET", "/v1/models"), ("GET", "/v1/kb/CWE-79"),
                         ("POST", "/v1/ask"), ("POST", "/v1/chat/completions"), ("GET", "/metrics")]:
        r = httpx.request(method, url + path, json={"text": SQLI})
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(url + "/v1/triage", json={"text": SQLI}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "API key" in wrong.json()["error"]["message"]
    ok = httpx.post(url + "/v1/triage", json={"text": SQLI}, headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200, ok.text
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()
    assert openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0).models.list().data == []


@pytest.fixture(scope="module")
def tight(tmp_path_factory, start_server):
    """One worker, one queue place, half a second per request, an audit log."""
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    live = start_server(ServeSettings(concurrency=1, queue=1, timeout_s=0.5, audit_log=audit, warmup=False))
    live.audit = audit
    yield live
    live.stop()


@contextmanager
def _blocked(limiter, n: int):
    """Occupy n of the limiter's places with work that waits until the block exits."""
    release = threading.Event()
    futures = [limiter.submit(release.wait, 10) for _ in range(n)]
    try:
        yield
    finally:
        release.set()
        wait(futures, timeout=10)
        time.sleep(0.05)  # done-callbacks (which free the places) run just after the futures finish


def test_full_queue_is_429_with_retry_after(tight):
    with _blocked(tight.app.state.limiter, 2):  # the worker and the one queue place
        r = httpx.post(tight.url + "/v1/triage", json={"text": SQLI})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["type"] == "server_overloaded"
        assert httpx.get(tight.url + "/healthz").status_code == 200  # the loop keeps answering


def test_slow_request_is_504(tight):
    with _blocked(tight.app.state.limiter, 1):  # the request waits behind this past its 0.5 s
        started = time.monotonic()
        r = httpx.post(tight.url + "/v1/triage", json={"text": SQLI})
        assert r.status_code == 504 and "timed out" in r.json()["error"]["message"]
        assert time.monotonic() - started < 5
    assert httpx.post(tight.url + "/v1/triage", json={"text": SQLI}, timeout=30).status_code == 200


def test_burst_gets_429s_never_500s(tight):
    body = {"texts": [SQLI] * 200, "k": 3}
    with httpx.Client(base_url=tight.url, timeout=30) as c, ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: c.post("/v1/triage", json=body).status_code, range(16)))
    assert set(statuses) <= {200, 429, 504}, statuses
    assert 429 in statuses and 200 in statuses


def test_audit_log_has_hashes_not_secrets(tight):
    body = json.dumps({"text": SQLI}).encode()
    httpx.post(tight.url + "/v1/triage", content=body, headers={"content-type": "application/json",
                                                                 "Authorization": "Bearer secret-ish"})
    rows = [json.loads(line) for line in tight.audit.read_text().splitlines()]
    row = next(r for r in rows if r["input_sha256"] == hashlib.sha256(body).hexdigest())
    assert row["path"] == "/v1/triage" and row["input_bytes"] == len(body) and row["client"] == "127.0.0.1"
    assert {"time", "status", "latency_ms"} <= set(row)
    assert "secret-ish" not in tight.audit.read_text() and SQLI not in tight.audit.read_text()


def test_loopback_detection():
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.5", "example.org"]))


def _cli(*args: str, env: dict | None = None, **kw):
    return subprocess.run([sys.executable, "-m", "cyberslm.cli", "serve", *args], capture_output=True,
                          text=True, env=env, **kw)


def test_refuses_public_bind_without_a_key():
    env = {k: v for k, v in os.environ.items() if k != "CYBERSLM_API_KEY"}
    r = _cli("--host", "0.0.0.0", "--port", "1", env=env, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: refusing to bind 0.0.0.0 without an API key: "
                                "pass --api-key or set CYBERSLM_API_KEY")


def test_cli_serves_on_loopback(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CYBERSLM_API_KEY="k-from-env")
    proc = subprocess.Popen([sys.executable, "-m", "cyberslm.cli", "serve", "--port", str(port),
                             "--audit-log", str(tmp_path / "a.jsonl"), "--log-level", "warning"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").json()["auth"] is True:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 401
        ok = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": "Bearer k-from-env"})
        assert ok.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 2
