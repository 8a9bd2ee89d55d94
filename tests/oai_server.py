"""A tiny, real OpenAI-compatible HTTP server for tests (http.server on 127.0.0.1).

It answers chat completions deterministically from the prompt's task, streams with SSE when
asked, records every request, can slow down (to kill a run mid-flight) and can fail a prompt once
(to exercise client retries). Usable in-process (`start_server`) or as a script (`python oai_server.py PORT`).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = [
    ("multiple-choice", "Options were compared against ATT&CK.\nB"),
    ("CVSS v3.1 Base Score", "AV is network, the rest follows.\nCVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
    ("appropriate CWE", "The input reaches HTML output unescaped.\nCWE-79"),
    ("MITRE Enterprise attack patterns", "PowerShell is T1059.001 and HTTP C2 is T1071.\nT1059, T1071"),
    ("threat actor", "The X-Agent implant points to a GRU unit.\nFancy Bear"),
]


def answer_for(prompt: str) -> str:
    for marker, answer in ANSWERS:
        if marker in prompt:
            return answer
    return "I do not know."


class State:
    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.requests: list[dict] = []
        self.failed: set[str] = set()
        self.lock = threading.Lock()


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _json(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.rstrip("/").endswith("/models"):
                return self._json(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})
            return self._json(404, {"error": {"message": "not found"}})

        def do_POST(self):
            if not self.path.endswith("/chat/completions"):
                return self._json(404, {"error": {"message": "not found"}})
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            with state.lock:
                state.requests.append({"prompt": prompt, "seed": body.get("seed"), "messages": body["messages"],
                                       "temperature": body.get("temperature"), "model": body.get("model"),
                                       "auth": self.headers.get("Authorization")})
                flaky = "FLAKY" in prompt and prompt not in state.failed
                if flaky:
                    state.failed.add(prompt)
            if flaky:
                return self._json(503, {"error": {"message": "try again"}})
            if state.delay:
                time.sleep(state.delay)
            text = answer_for(prompt)
            if body.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for piece in text.split(" "):
                    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                             "choices": [{"index": 0, "delta": {"content": piece + " "}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                return None
            return self._json(200, {
                "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            })

    return Handler


def start_server(delay: float = 0.0, port: int = 0) -> tuple[ThreadingHTTPServer, State]:
    state = State(delay)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


if __name__ == "__main__":
    srv, _ = start_server(float(sys.argv[2]) if len(sys.argv) > 2 else 0.0, int(sys.argv[1]))
    srv.serve_forever()
