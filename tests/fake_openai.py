"""An OpenAI-compatible embeddings server for tests: a real HTTP server process on loopback.

    python -m tests.fake_openai --port 8765 [--dimension 8]

POST /v1/embeddings answers like the API: one deterministic vector per input (from SHA-256 of
the text, so a test can recompute it), in `float` or `base64` encoding. Failures are injected
through POST /control with JSON: {"script": ["429", "500", "slow", "ok", ...]} makes the next
requests answer in that order (429 with Retry-After, 500, a response after `slow_s`), then
normally; {"slow_s": 10} sets how long a slow answer takes; {"down": true} answers 503 to
everything until {"down": false}. A request with an input containing `REFUSED_MARK` is answered
400 as a whole, as the API does for one bad input.
GET /stats returns the number of requests by answer and the inputs embedded.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REFUSED_MARK = "<fake-openai:refuse>"


def fake_vector(text: str, dimension: int) -> list[float]:
    """Values in [-1, 1) from the text's SHA-256, repeated as needed: a test can recompute it."""
    digest = hashlib.sha256(text.encode()).digest()
    while len(digest) < dimension * 2:
        digest += hashlib.sha256(digest).digest()
    return [struct.unpack_from(">h", digest, 2 * i)[0] / 32768 for i in range(dimension)]


class State:
    def __init__(self, dimension: int, slow_s: float) -> None:
        self.dimension = dimension
        self.slow_s = slow_s
        self.script: list[str] = []
        self.down = False
        self.answers: Counter[str] = Counter()
        self.embedded = 0
        self.lock = threading.Lock()

    def next_answer(self) -> str:
        with self.lock:
            answer = "503" if self.down else (self.script.pop(0) if self.script else "ok")
            self.answers[answer] += 1
            return answer


def handler_for(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

        def do_GET(self) -> None:
            self._reply(200, {"answers": dict(state.answers), "embedded": state.embedded})

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/control":
                with state.lock:
                    state.script = list(body.get("script", state.script))
                    state.down = bool(body.get("down", state.down))
                    state.slow_s = float(body.get("slow_s", state.slow_s))
                self._reply(200, {"ok": True})
                return
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            if any(not text or REFUSED_MARK in text for text in inputs):
                with state.lock:  # refused before any scripted answer, as the API validates first
                    state.answers["400"] += 1
                message = "'$.input' is invalid: refused input"
                self._reply(400, {"error": {"message": message, "type": "invalid_request_error"}})
                return
            answer = state.next_answer()
            if answer == "429":
                self._reply(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                            {"Retry-After": "0.2"})  # fmt: skip
                return
            if answer in ("500", "503"):
                self._reply(int(answer), {"error": {"message": "unavailable", "type": "server"}})
                return
            if answer == "slow":
                time.sleep(state.slow_s)
            self._embeddings(body)

        def _embeddings(self, body: dict[str, Any]) -> None:
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = []
            for index, text in enumerate(inputs):
                vector = fake_vector(text, state.dimension)
                if body.get("encoding_format") == "base64":
                    packed = struct.pack(f"<{len(vector)}f", *vector)
                    embedding: Any = base64.b64encode(packed).decode()
                else:
                    embedding = vector
                data.append({"object": "embedding", "index": index, "embedding": embedding})
            with state.lock:
                state.embedded += len(inputs)
            self._reply(200, {"object": "list", "data": data, "model": body["model"],
                              "usage": {"prompt_tokens": 0, "total_tokens": 0}})  # fmt: skip

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dimension", type=int, default=8)
    parser.add_argument("--slow-s", type=float, default=3.0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), handler_for(State(args.dimension, args.slow_s))
    )
    print(f"fake OpenAI embeddings on http://127.0.0.1:{args.port}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
