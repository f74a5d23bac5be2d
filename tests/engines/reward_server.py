"""A small reward server on loopback for the served-engine tests: OpenRLHF's ``/get_reward``, a declared JSON shape
(``/score``), an OpenAI-style ``/v1/models`` and ``/v1/chat/completions``, and injected faults.

Faults are a queue the test fills: each call to a reward or chat route takes the next one (``ok`` when empty):
``500``, ``429`` (with ``Retry-After: 0``), ``400``, ``slow`` (sleeps past the client's timeout), ``malformed``
(a body that is not JSON), ``drop`` (closes the connection without a reply), ``short`` (one reward too few). Every
request's path, headers and body are kept, so tests can see what was sent.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_S = 2.0


def reward_of(text: str) -> float:
    """A deterministic reward of a text: its length in hundreds of characters, plus 1 for each 'please'."""
    return len(text) / 100 + text.lower().count("please")


@dataclass
class ServerState:
    faults: deque[str] = field(default_factory=deque)
    seen: list[dict[str, Any]] = field(default_factory=list)
    models: tuple[str, ...] = ("tiny-rm",)
    #: Seconds every reward call takes, and the most calls that were ever in flight at once.
    delay_s: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self) -> str:
        with self.lock:
            return self.faults.popleft() if self.faults else "ok"


class _Handler(BaseHTTPRequestHandler):
    state: ServerState
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def do_GET(self) -> None:  # noqa: N802
        with self.state.lock:
            self.state.seen.append({"path": self.path, "headers": dict(self.headers), "body": None})
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": m, "root": m} for m in self.state.models]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        with self.state.lock:
            self.state.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        fault = self.state.next_fault()
        with self.state.lock:
            self.state.in_flight += 1
            self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
        try:
            time.sleep(self.state.delay_s)
            self._reply(body, fault)
        finally:
            with self.state.lock:
                self.state.in_flight -= 1

    def _reply(self, body: Any, fault: str) -> None:
        if fault == "500":
            return self._json(500, {"error": "boom"})
        if fault == "429":
            return self._json(429, {"error": "slow down"}, {"Retry-After": "0"})
        if fault == "400":
            return self._json(400, {"error": "bad request"})
        if fault == "slow":
            time.sleep(SLOW_S)
        if fault == "malformed":
            return self._send(200, b'{"rewards": [1.0, ')
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if self.path == "/get_reward":
            rewards = [reward_of(q) for q in body["query"]]
            if fault == "short":
                rewards = rewards[:-1]
            return self._json(200, {"rewards": rewards, "scores": rewards})
        if self.path == "/score":
            return self._json(200, {"data": [{"score": reward_of(t)} for t in body["inputs"]]})
        if self.path == "/pooling":  # token_classify: two label logits per token, (position / 10, -position)
            rows = [[[i / 10, -float(i)] for i in range(len(ids))] for ids in body["input"]]
            return self._json(200, {"data": [{"index": i, "data": r} for i, r in enumerate(rows)]})
        if self.path == "/v1/chat/completions":
            return self._json(200, _chat_reply(body))
        return self._json(404, {"error": "not found"})


def _chat_reply(body: dict[str, Any]) -> dict[str, Any]:
    """A judge that prefers the longer response (pairwise) or rates by length (pointwise)."""
    text = body["messages"][-1]["content"]
    a = re.search(r"\[The Start of Assistant A's Answer\]\n(.*?)\n\[The End of Assistant A's Answer\]", text, re.S)
    b = re.search(r"\[The Start of Assistant B's Answer\]\n(.*?)\n\[The End of Assistant B's Answer\]", text, re.S)
    if a and b:
        content = "[[A]]" if len(a.group(1)) >= len(b.group(1)) else "[[B]]"
    else:
        content = f"Rating: [[{min(10, 1 + len(text) % 10)}]]"
    usage = {"prompt_tokens": len(text) // 4, "completion_tokens": 5, "total_tokens": len(text) // 4 + 5}
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}], "usage": usage}


@contextmanager
def reward_server() -> Iterator[tuple[str, ServerState]]:
    """A server on 127.0.0.1 (a free port) for the duration of the block: (base URL, its state)."""
    state = ServerState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
