from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from pipelines.generation.base import GenerationError, GenerationParams
from pipelines.generation.http_backend import HttpBackend, _retry_after

SERVER = Path(__file__).with_name("chat_server.py")
PARAMS = GenerationParams(max_new_tokens=32)


class Server:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = requests.get(f"{self.url}/stats", timeout=5).json()
        return data

    def backend(self, **options: Any) -> HttpBackend:
        options.setdefault("backoff_s", 0.01)
        return HttpBackend("test-model", base_url=f"{self.url}/v1", **options)


@pytest.fixture
def server() -> Iterator[Server]:
    """The chat-completions test server in its own process, on a free port of 127.0.0.1."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), f"the test server did not start: {line!r}"
        yield Server(proc, int(line.split()[1]))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_chat_and_plain_prompts_go_to_their_endpoints(server: Server) -> None:
    backend = server.backend()
    chat, plain = backend.generate(
        [
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}],
            "plain words",
        ],
        PARAMS,
    )
    assert chat.text == "echo: hi there"
    assert (chat.prompt_tokens, chat.completion_tokens, chat.finish_reason) == (4, 3, "stop")
    assert plain.text == "echo: plain words"
    assert plain.prompt_tokens == 2


def test_the_request_carries_the_parameters_and_the_key(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINNOW_TEST_KEY", "sk-test-123")
    backend = server.backend(api_key_env="WINNOW_TEST_KEY")
    # A newline as the stop string: the JSON echoed back holds it escaped, so nothing is cut.
    params = GenerationParams(max_new_tokens=500, temperature=0.7, top_p=0.9, seed=42, stop=("\n",))
    sent, auth = backend.generate(["params", [{"role": "user", "content": "auth"}]], params)
    body = json.loads(sent.text)
    assert body == {
        "model": "test-model",
        "prompt": "params",
        "max_tokens": 500,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 42,
        "stop": ["\n"],
        "n": 1,
    }
    assert auth.text == "Bearer sk-test-123"
    assert "sk-test" not in json.dumps(backend.describe())


def test_stop_strings_and_length_give_the_finish_reason(server: Server) -> None:
    backend = server.backend()
    stopped, cut = backend.generate(
        ["alpha beta STOP gamma", "one two three four five"],
        GenerationParams(max_new_tokens=4, stop=("STOP",)),
    )
    assert (stopped.text, stopped.finish_reason) == ("echo: alpha beta ", "stop")
    assert (cut.text, cut.finish_reason) == ("echo: one two three", "length")
    assert cut.completion_tokens == 4


def test_429_waits_for_retry_after_then_succeeds(server: Server) -> None:
    command = "fail 429 2 retry-after 1"
    started = time.monotonic()
    (result,) = server.backend(max_retries=3).generate([command], PARAMS)
    assert result.text == f"echo: {command}"
    arrivals = server.stats()["arrivals"][command]
    assert len(arrivals) == 3
    # The backoff alone would be ~0.01 s: the gaps are the server's Retry-After.
    assert all(b - a >= 0.95 for a, b in zip(arrivals, arrivals[1:], strict=False))
    assert time.monotonic() - started >= 1.9


def test_a_500_is_retried_with_backoff(server: Server) -> None:
    (result,) = server.backend(max_retries=2, backoff_s=0.2).generate(["fail 500 1"], PARAMS)
    assert result.text == "echo: fail 500 1"
    first, second = server.stats()["arrivals"]["fail 500 1"]
    assert 0.1 - 0.01 <= second - first  # jitter keeps at least half of the 0.2 s backoff


def test_spent_retries_name_the_status_and_the_body(server: Server) -> None:
    backend = server.backend(max_retries=2)
    with pytest.raises(GenerationError) as caught:
        backend.generate(["fine", "fail 503 9"], PARAMS)
    message = str(caught.value)
    assert message.startswith("prompt 1: ")
    assert "HTTP 503" in message and "simulated failure 503" in message
    assert "gave up after 3 attempt(s)" in message
    assert len(server.stats()["arrivals"]["fail 503 9"]) == 3


def test_a_client_error_is_not_retried(server: Server) -> None:
    with pytest.raises(GenerationError, match="HTTP 400.*not retried"):
        server.backend(max_retries=3).generate(["fail 400 1"], PARAMS)
    assert len(server.stats()["arrivals"]["fail 400 1"]) == 1


def test_a_hung_server_hits_the_timeout(server: Server) -> None:
    backend = server.backend(timeout_s=0.5, max_retries=1)
    started = time.monotonic()
    with pytest.raises(GenerationError, match=r"no answer within timeout_s=0.5s.*2 attempt"):
        backend.generate(["sleep 30"], PARAMS)
    assert time.monotonic() - started < 5
    assert len(server.stats()["arrivals"]["sleep 30"]) == 2


def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = HttpBackend("m", base_url=f"http://127.0.0.1:{port}", max_retries=1, backoff_s=0.01)
    with pytest.raises(GenerationError, match="connection failed.*2 attempt"):
        backend.generate(["hello"], PARAMS)


def test_concurrency_is_bounded(server: Server) -> None:
    backend = server.backend(concurrency=3)
    commands = [f"sleep 0.3 #{i}" for i in range(12)]
    started = time.monotonic()
    results = backend.generate(commands, PARAMS)
    elapsed = time.monotonic() - started
    assert [r.text for r in results] == [f"echo: {c}" for c in commands]
    assert server.stats()["max_in_flight"] == 3
    assert elapsed >= 4 * 0.3
    # A second call shares the same bounded pool.
    backend.generate(commands[:4], PARAMS)
    assert server.stats()["max_in_flight"] == 3


def _generate_in_child(backend: HttpBackend, queue: Any) -> None:
    queue.put([g.text for g in backend.generate(["from the child"], PARAMS)])


def test_a_forked_worker_process_gets_its_own_request_threads(server: Server) -> None:
    import multiprocessing

    backend = server.backend(concurrency=2)
    backend.generate(["before the fork"], PARAMS)  # the parent's pool now has threads
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_generate_in_child, args=(backend, queue))
    child.start()
    try:
        assert queue.get(timeout=20) == ["echo: from the child"]
    finally:
        child.join(timeout=10)
        if child.is_alive():  # hung on the inherited pool: fail, do not hang the session
            child.kill()
            child.join()
    assert child.exitcode == 0


def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WINNOW_MISSING_KEY", raising=False)
    with pytest.raises(GenerationError, match="'WINNOW_MISSING_KEY'.*not set"):
        HttpBackend("m", base_url="http://127.0.0.1:1", api_key_env="WINNOW_MISSING_KEY")
    with pytest.raises(GenerationError, match="base_url must start with http"):
        HttpBackend("m", base_url="127.0.0.1:8000")
    with pytest.raises(GenerationError, match="concurrency"):
        HttpBackend("m", base_url="http://127.0.0.1:1", concurrency=0)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert _retry_after("2.5") == 2.5
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (_retry_after(later) or 0) <= 30
