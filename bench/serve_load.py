"""Bounded load on a loopback `cyberslm serve`: requests/s, p50/p99 latency, errors.

Starts the real server as a subprocess (so client and server do not share one GIL), then runs N
concurrent asyncio+httpx clients for D seconds against /v1/triage (classifier backend), then
fewer clients against /v1/chat/completions (SmolLM2 GGUF). Prints a markdown table and writes
JSON (and a latency CDF plot with --plot).

    python bench/serve_load.py --clients 32 --duration 30 --chat-clients 4 --chat-duration 20 \
        --json bench/results/serve_load.json --plot docs/img/serve-latency.png
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

DESCRIPTIONS = [
    "SQL injection vulnerability in login.php in Acme CMS 2.1 allows remote attackers to execute arbitrary SQL commands via the username parameter.",
    "Cross-site scripting (XSS) vulnerability in search.php in Acme Forum 1.0 allows remote attackers to inject arbitrary web script or HTML via the q parameter.",
    "Buffer overflow in the packet parser of FooRouter firmware 3.2 allows remote attackers to execute arbitrary code via a crafted DHCP option.",
    "Path traversal in the file download endpoint of BarDrive 5.0 allows authenticated users to read arbitrary files via ../ sequences in the name parameter.",
    "Use-after-free in the PDF renderer of BazViewer before 9.1 allows attackers to execute code via a crafted document.",
    "Missing authorization check in the admin API of QuxPanel 2.4 allows any logged-in user to create administrator accounts.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "cyberslm.cli", "serve", "--port", str(port),
                             "--log-level", "warning", *extra], env=dict(os.environ))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("server did not start within 180 s")


async def load(url: str, make_body, clients: int, duration: float) -> dict:
    """`clients` workers send requests back to back for `duration` seconds."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    stop_at = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:

        async def worker(i: int) -> None:
            n = 0
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    r = await client.post(url, json=make_body(i, n))
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - started)
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                n += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    ok = statuses.get(200, 0)
    return {"clients": clients, "seconds": round(elapsed, 1), "ok": ok, "requests_per_s": round(ok / elapsed, 2),
            "p50_ms": round(pct(0.50), 1), "p99_ms": round(pct(0.99), 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
            "errors": sum(n for s, n in statuses.items() if s != 200),
            "statuses": {str(k): v for k, v in statuses.items()}, "latencies_ms": [x * 1000 for x in latencies]}


def triage_body(i: int, n: int) -> dict:
    return {"text": DESCRIPTIONS[(i + n) % len(DESCRIPTIONS)], "k": 3}


def chat_body_factory(max_tokens: int):
    def body(i: int, n: int) -> dict:
        text = DESCRIPTIONS[(i + n) % len(DESCRIPTIONS)]
        return {"model": "hf:smollm2", "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": f"Which weakness does this describe? {text}"}]}
    return body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32, help="0 skips the triage phase")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--chat-clients", type=int, default=4, help="0 skips the chat phase")
    ap.add_argument("--chat-duration", type=float, default=20)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--queue", type=int, default=64, help="server --queue (beyond it: 429)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()

    port = free_port()
    chat = args.chat_clients > 0
    proc = start_server(port, "--queue", str(args.queue), *(["--model", "hf:smollm2"] if chat else []))
    base = f"http://127.0.0.1:{port}"
    results = {}
    try:
        if args.clients > 0:
            print(f"triage: {args.clients} clients x {args.duration:g} s ...", file=sys.stderr)
            results["triage"] = asyncio.run(load(base + "/v1/triage", triage_body, args.clients, args.duration))
        if chat:
            print(f"chat: {args.chat_clients} clients x {args.chat_duration:g} s ...", file=sys.stderr)
            results["chat"] = asyncio.run(load(base + "/v1/chat/completions", chat_body_factory(args.max_tokens),
                                               args.chat_clients, args.chat_duration))
        tokens = [line for line in httpx.get(base + "/metrics").text.splitlines()
                  if line.startswith("cyberslm_generated_tokens_total")]
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    print("| route | clients | seconds | ok | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for route, r in results.items():
        print(f"| {route} | {r['clients']} | {r['seconds']} | {r['ok']} | {r['requests_per_s']} | "
              f"{r['p50_ms']} | {r['p99_ms']} | {r['errors']} {r['statuses'] if r['errors'] else ''} |")
    if tokens:
        print("\n" + "\n".join(tokens))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        slim = {k: {kk: vv for kk, vv in v.items() if kk != "latencies_ms"} for k, v in results.items()}
        args.json.write_text(json.dumps(dict(slim, args=vars(args) | {"json": str(args.json), "plot": str(args.plot)}),
                                        indent=2))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.5), squeeze=False)
        for ax, (route, r) in zip(axes[0], results.items(), strict=True):
            lat = r["latencies_ms"]
            ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))])
            ax.set(title=f"{route}: {r['clients']} clients, {r['requests_per_s']} req/s",
                   xlabel="latency (ms)", ylabel="fraction of requests")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()
