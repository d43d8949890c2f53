"""A scripted OpenAI-compatible server on loopback for fault tests: each request takes the next
planned behaviour (an HTTP error, a hang, garbage, or a normal answer)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OK = "ok"


class FakeOpenAI:
    def __init__(
        self,
        plan: list[str | int],
        answer: str = "A fine answer.",
        logprobs: list[dict] | None = None,
        fail_if: str | None = None,
    ) -> None:
        """``fail_if``: a request whose messages contain this text always gets an HTTP 500 (it fails
        for good, whatever the plan says)."""
        self.plan = list(plan)
        self.fail_if = fail_if
        self.answer = answer
        self.logprobs = logprobs
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.url = ""

    def next_behaviour(self) -> str | int:
        with self.lock:
            return self.plan.pop(0) if self.plan else OK

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        """The planned answer; ``{question}`` in it is replaced by the request's last message."""
        messages = body.get("messages") or [{}]
        text = self.answer.replace("{question}", str(messages[-1].get("content", "")))
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }
        if self.logprobs is not None:
            choice["logprobs"] = {"content": [{"token": "x", "logprob": -0.1, "top_logprobs": self.logprobs}]}
        return {"choices": [choice], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}


@contextmanager
def serve(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.requests.append(body)
            fake.headers.append(dict(self.headers))
            doomed = fake.fail_if is not None and fake.fail_if in json.dumps(body.get("messages"))
            behaviour = 500 if doomed else fake.next_behaviour()
            if behaviour == "hang":
                time.sleep(1.5)
                behaviour = OK
            if behaviour == "garbage":
                self._send(200, b"<html>not json</html>", "text/html")
            elif behaviour == "empty":
                self._send(200, json.dumps({"choices": [{"message": {"content": ""}}]}).encode())
            elif behaviour == 429:
                self._send(429, b'{"error": {"message": "slow down"}}', extra={"Retry-After": "0"})
            elif isinstance(behaviour, int):
                self._send(behaviour, json.dumps({"error": {"message": f"planned {behaviour}"}}).encode())
            else:
                self._send(200, json.dumps(fake.reply(body)).encode())

        def _send(
            self, status: int, payload: bytes, kind: str = "application/json", extra: dict | None = None
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
