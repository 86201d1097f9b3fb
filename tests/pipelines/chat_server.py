"""A tiny OpenAI-compatible server for the HTTP backend's tests: ``python chat_server.py``.

It listens on 127.0.0.1 (a free port, printed as ``PORT <n>``) and answers
``POST /v1/chat/completions`` (the last message's content is the command) and
``POST /v1/completions`` (the prompt is the command). Commands:

* anything else: the reply is ``echo: <command>``, cut at the request's stop strings and to
  ``max_tokens`` words (usage counts words);
* ``fail <status> <times> [retry-after <seconds>]``: the first ``times`` requests with this
  command get ``status`` (and that Retry-After header), later ones the echo;
* ``sleep <seconds> ...``: waits, then echoes (long sleeps are how a hang looks);
* ``params``: the reply is the request body as JSON; ``auth``: the Authorization header
  (neither is cut).

``GET /stats`` returns the most requests seen in flight at once, the request count and each
command's arrival times.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOCK = threading.Lock()
STATE: dict[str, Any] = {"in_flight": 0, "max_in_flight": 0, "requests": 0}
ARRIVALS: dict[str, list[float]] = defaultdict(list)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read /stats, not the log."""

    def do_GET(self) -> None:
        if self.path != "/stats":
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        with LOCK:
            self.send_json(200, {**STATE, "arrivals": dict(ARRIVALS)})

    def do_POST(self) -> None:
        with LOCK:
            STATE["in_flight"] += 1
            STATE["requests"] += 1
            STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
        try:
            self.answer()
        finally:
            with LOCK:
                STATE["in_flight"] -= 1

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            self.send_json(400, {"error": {"message": "the body is not JSON"}})
            return
        problem, command = read_command(self.path, body)
        if problem:
            self.send_json(400 if self.path.startswith("/v1/") else 404, {"error": problem})
            return
        with LOCK:
            ARRIVALS[command].append(time.time())
            seen = len(ARRIVALS[command])
        words = command.split()
        if words[0] == "fail" and seen <= int(words[2]):
            status = int(words[1])
            headers = {"Retry-After": words[4]} if "retry-after" in words else {}
            self.send_json(status, {"error": {"message": f"simulated failure {status}"}}, headers)
            return
        if words[0] == "sleep":
            time.sleep(float(words[1]))
        if command == "params":
            text, cut = json.dumps(body, sort_keys=True), False
        elif command == "auth":
            text, cut = self.headers.get("Authorization") or "none", False
        else:
            text, cut = f"echo: {command}", True
        self.send_json(200, completion(self.path, body, text, cut=cut))

    def send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)


def read_command(path: str, body: Any) -> tuple[str, str]:
    """(problem, command): the request checked against the schema of its route."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return "'model' is required", ""
    if path == "/v1/chat/completions":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty list", ""
        if any(not isinstance(m, dict) or set(m) != {"role", "content"} for m in messages):
            return "each message has exactly 'role' and 'content'", ""
        return "", str(messages[-1]["content"])
    if path == "/v1/completions":
        if not isinstance(body.get("prompt"), str):
            return "'prompt' must be a string", ""
        return "", body["prompt"]
    return f"no route {path}", ""


def completion(path: str, body: dict[str, Any], text: str, *, cut: bool) -> dict[str, Any]:
    """A (chat) completion answer holding ``text``, cut as the request asks when ``cut``."""
    finish = "stop"
    for stop in body.get("stop") or [] if cut else []:
        if stop in text:
            text = text[: text.index(stop)]
    words = text.split(" ")
    if cut and len(words) > body.get("max_tokens", 16):
        text, finish = " ".join(words[: body["max_tokens"]]), "length"
    prompt = body.get("prompt") or " ".join(m["content"] for m in body.get("messages", []))
    usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
    if path == "/v1/chat/completions":
        choice = {"index": 0, "message": {"role": "assistant", "content": text}}
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text}
        kind = "text_completion"
    choice["finish_reason"] = finish
    return {
        "id": "test",
        "object": kind,
        "model": body["model"],
        "choices": [choice],
        "usage": usage,
    }


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
