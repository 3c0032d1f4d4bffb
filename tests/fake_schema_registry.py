"""A Schema Registry for tests: a real HTTP server process on loopback speaking the part of the
Confluent REST API that confluent_kafka.schema_registry's Avro serializer and deserializer use.

    python -m tests.fake_schema_registry --port 8081

POST /subjects/{subject}/versions registers a schema (the same text gets the same id),
GET /schemas/ids/{id} returns one (404 with error code 40403 when unknown), GET /subjects lists
subjects; anything else (the client's association lookup, for one) is 404, as an older registry
answers. Outages are injected through POST /control with JSON: {"fail": 3} answers the next
3 registry requests 503, {"down": true} answers 503 until {"down": false}. GET /control/stats
returns the requests by answer.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_VERSIONS = re.compile(r"^/subjects/([^/?]+)/versions(?:\?.*)?$")
_BY_ID = re.compile(r"^/schemas/ids/(\d+)(?:\?.*)?$")


class State:
    def __init__(self) -> None:
        self.schemas: list[str] = []  # id - 1 -> schema text
        self.subjects: dict[str, list[int]] = {}
        self.fail = 0
        self.down = False
        self.answers: Counter[str] = Counter()
        self.lock = threading.Lock()

    def unavailable(self) -> bool:
        with self.lock:
            if self.down or self.fail > 0:
                self.fail = max(0, self.fail - 1)
                self.answers["503"] += 1
                return True
            return False


def handler_for(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

        def _ok(self, body: Any) -> None:
            with state.lock:
                state.answers["200"] += 1
            self._reply(200, body)

        def do_GET(self) -> None:
            if self.path == "/control/stats":
                self._reply(200, {"answers": dict(state.answers), "schemas": len(state.schemas)})
                return
            if state.unavailable():
                self._reply(503, {"error_code": 50301, "message": "Service Unavailable"})
                return
            if self.path.startswith("/subjects"):
                self._ok(sorted(state.subjects))
                return
            match = _BY_ID.match(self.path)
            schema_id = int(match.group(1)) if match else 0
            if not 1 <= schema_id <= len(state.schemas):
                with state.lock:
                    state.answers["404"] += 1
                self._reply(404, {"error_code": 40403, "message": "Schema not found"})
                return
            self._ok({"schema": state.schemas[schema_id - 1]})

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/control":
                with state.lock:
                    state.fail = int(body.get("fail", state.fail))
                    state.down = bool(body.get("down", state.down))
                self._reply(200, {"ok": True})
                return
            if state.unavailable():
                self._reply(503, {"error_code": 50301, "message": "Service Unavailable"})
                return
            match = _VERSIONS.match(self.path)
            if match is None:
                self._reply(404, {"error_code": 404, "message": "not found"})
                return
            with state.lock:
                text = body["schema"]
                if text not in state.schemas:
                    state.schemas.append(text)
                schema_id = state.schemas.index(text) + 1
                versions = state.subjects.setdefault(match.group(1), [])
                if schema_id not in versions:
                    versions.append(schema_id)
            self._ok({"id": schema_id})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(State()))
    print(f"fake Schema Registry on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
