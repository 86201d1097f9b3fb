"""Text generation through any OpenAI-compatible HTTP server (vLLM, TGI, a hosted API).

Chat prompts go to ``/v1/chat/completions`` (the server applies the model's chat template),
plain prompts to ``/v1/completions``. Requests run on a bounded thread pool (``concurrency``
requests in flight per backend, at most), each with a timeout (``timeout_s``: the longest wait
to connect and for each part of the answer). A request that fails with HTTP 408, 429 or 5xx,
a timeout or a connection error is retried up to ``max_retries`` times, after the server's
``Retry-After`` when it sends one (at most 120 s), else after an exponential backoff with
jitter (``backoff_s * 2**attempt``, scaled by a random factor in [0.5, 1], at most
``max_backoff_s``).
Other 4xx answers are not retried: they mean the request or the configuration is wrong. When a
prompt fails for good the whole call raises ``GenerationError`` naming the prompt, the URL, the
last status and an excerpt of the body.

The API key is read from the environment variable named by ``api_key_env``, never from a config.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

import requests

from pipelines.generation.backend_utils import check_prompts, cut_at_stop
from pipelines.generation.base import Backend, Generation, GenerationError, GenerationParams, Prompt

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429})
# A Retry-After longer than this is cut to it: a step should fail, not sleep for an hour.
MAX_RETRY_AFTER_S = 120.0
BODY_EXCERPT = 300


class _Transient(Exception):
    """One attempt failed in a way that a later attempt may not."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


class HttpBackend(Backend):
    """An OpenAI-compatible endpoint; ``base_url`` with or without the trailing ``/v1``."""

    name = "http"

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key_env: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        super().__init__(model)
        if not base_url.startswith(("http://", "https://")):
            raise GenerationError(f"base_url must start with http:// or https://, got {base_url!r}")
        if concurrency < 1:
            raise GenerationError(f"concurrency must be >= 1, got {concurrency}")
        if timeout_s <= 0:
            raise GenerationError(f"timeout_s must be > 0, got {timeout_s}")
        if max_retries < 0:
            raise GenerationError(f"max_retries must be >= 0, got {max_retries}")
        if backoff_s < 0 or max_backoff_s < 0:
            raise GenerationError("backoff_s and max_backoff_s must be >= 0")
        root = base_url.rstrip("/")
        self.base_url = root if root.endswith("/v1") else f"{root}/v1"
        self.api_key_env = api_key_env
        self.headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise GenerationError(
                    f"api_key_env names {api_key_env!r}, but that environment variable is not "
                    "set for this worker: set it to the API key, or drop api_key_env for a "
                    "server without authentication"
                )
            self.headers["Authorization"] = f"Bearer {key}"
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._local = threading.local()

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(
            base_url=self.base_url,
            concurrency=self.concurrency,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
        )
        return info

    def close(self) -> None:
        """Stop the request threads (they also end with the process)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _executor(self) -> ThreadPoolExecutor:
        """The bounded pool, made in this process (a pool inherited through fork has no threads)."""
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="http-gen"
                )
                self._pool_pid = os.getpid()
                self._local = threading.local()
            return self._pool

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        check_prompts(prompts)
        pool = self._executor()
        futures = [pool.submit(self._one, prompt, params) for prompt in prompts]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = _first_failure(futures, done)
        if failed is not None:
            for future in futures:
                future.cancel()
            index, exc = failed
            raise GenerationError(f"prompt {index}: {exc}") from exc
        return [future.result() for future in futures]

    def request_body(self, prompt: Prompt, params: GenerationParams) -> dict[str, Any]:
        """The JSON body for one prompt: chat messages or a plain completion."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            "n": 1,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if isinstance(prompt, str):
            body["prompt"] = prompt
        else:
            body["messages"] = prompt
        return body

    def _one(self, prompt: Prompt, params: GenerationParams) -> Generation:
        chat = not isinstance(prompt, str)
        url = f"{self.base_url}/{'chat/completions' if chat else 'completions'}"
        body = self.request_body(prompt, params)
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                data = self._post(url, body)
            except _Transient as exc:
                if attempt + 1 == attempts:
                    raise GenerationError(
                        f"{url}: {exc.problem}; gave up after {attempts} attempt(s) "
                        f"(max_retries {self.max_retries})"
                    ) from exc
                delay = self._delay(attempt, exc.retry_after)
                logger.warning(
                    "%s: %s; retry %d of %d in %.2fs",
                    url,
                    exc.problem,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
                continue
            return _parse(data, chat=chat, stop=params.stop, url=url)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            response = session.post(url, json=body, headers=self.headers, timeout=self.timeout_s)
        except requests.Timeout as exc:
            raise _Transient(f"no answer within timeout_s={self.timeout_s}s") from exc
        except requests.ConnectionError as exc:
            raise _Transient(f"connection failed ({exc})") from exc
        status = response.status_code
        if status == 200:
            try:
                return response.json()
            except ValueError as exc:
                raise GenerationError(
                    f"{url}: HTTP 200 but the body is not JSON: {_excerpt(response.text)!r}"
                ) from exc
        problem = f"HTTP {status}: {_excerpt(response.text)!r}"
        if status in RETRY_STATUSES or status >= 500:
            raise _Transient(problem, _retry_after(response.headers.get("Retry-After")))
        raise GenerationError(
            f"{url}: {problem} (not retried: check the model name, the request and the API key)"
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        return min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311


def _first_failure(
    futures: list[Future[Generation]], done: set[Future[Generation]]
) -> tuple[int, BaseException] | None:
    for index, future in enumerate(futures):
        if future in done and not future.cancelled():
            exc = future.exception()
            if exc is not None:
                return index, exc
    return None


def _parse(data: Any, *, chat: bool, stop: Sequence[str], url: str) -> Generation:
    """A ``Generation`` from a (chat) completion response; stop strings cut here too."""
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        reason = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError) as exc:
        raise GenerationError(
            f"{url}: the answer is not a {'chat ' if chat else ''}completion "
            f"({exc!r} missing): {_excerpt(str(data))!r}"
        ) from exc
    text, stopped = cut_at_stop(text or "", stop)
    usage = data.get("usage") or {}
    finish = "length" if reason == "length" and not stopped else "stop"
    return Generation(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=finish,
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BODY_EXCERPT else text[:BODY_EXCERPT] + "..."
