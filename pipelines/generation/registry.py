"""Backends by name: ``backend_from_config({"backend": "transformers", "model": ...})``.

A config is a flat dict: ``backend`` (transformers, vllm or http), ``model`` (a Hugging Face id
or local path; for http, the model name the server knows), and that backend's options below.
Unknown keys and values of the wrong type are refused with the key's name. Built backends are
cached per process under their config, so a step that asks twice loads its model once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines.devices import load_once
from pipelines.generation.base import Backend, GenerationError


@dataclass(frozen=True)
class Option:
    """One backend option: its type, whether None is allowed, its meaning."""

    kind: type
    help: str
    nullable: bool = False


OPTIONS: dict[str, dict[str, Option]] = {
    "transformers": {
        "device": Option(str, "auto, cpu, cuda or cuda:N (auto: a GPU when one is visible)"),
        "dtype": Option(str, "auto, float32, float16 or bfloat16 (auto: bfloat16 on a GPU)"),
        "batch_size": Option(int, "most prompts generated together"),
        "max_batch_tokens": Option(int, "most padded prompt + new tokens in one batch"),
    },
    "vllm": {
        "dtype": Option(str, "auto, float32, float16 or bfloat16 (auto: bfloat16)"),
        "gpu_memory_utilization": Option(float, "share of GPU memory vLLM may take (0-1]"),
        "max_model_len": Option(int, "context length (default: the model's)", nullable=True),
        "tensor_parallel_size": Option(int, "GPUs to shard the model over"),
    },
    "http": {
        "base_url": Option(str, "the server's URL, e.g. http://gpu-host:8000/v1"),
        "api_key_env": Option(str, "name of the environment variable holding the key", True),
        "concurrency": Option(int, "most requests in flight at once"),
        "timeout_s": Option(float, "seconds to wait for one answer"),
        "max_retries": Option(int, "retries after 408, 429, 5xx, timeouts, connection errors"),
        "backoff_s": Option(float, "first retry delay (doubles each retry, with jitter)"),
        "max_backoff_s": Option(float, "longest retry delay"),
    },
}
REQUIRED = {"http": ("base_url",)}


def _transformers(model: str, options: dict[str, Any]) -> Backend:
    from pipelines.generation.transformers_backend import TransformersBackend

    return TransformersBackend(model, **options)


def _vllm(model: str, options: dict[str, Any]) -> Backend:
    from pipelines.generation.vllm_backend import VllmBackend

    return VllmBackend(model, **options)


def _http(model: str, options: dict[str, Any]) -> Backend:
    from pipelines.generation.http_backend import HttpBackend

    return HttpBackend(model, **options)


FACTORIES: dict[str, Callable[[str, dict[str, Any]], Backend]] = {
    "transformers": _transformers,
    "vllm": _vllm,
    "http": _http,
}


def backend_from_config(config: dict[str, Any]) -> Backend:
    """The backend that ``config`` names, built once per process and config."""
    name, model, options = check_config(config)
    key = json.dumps(config, sort_keys=True)
    return load_once(("generation_backend_config", key), lambda: FACTORIES[name](model, options))


def check_config(config: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(backend name, model, options) of a valid config; ``GenerationError`` naming the key."""
    if not isinstance(config, dict):
        raise GenerationError(f"a generation backend config is a dict, got {type(config).__name__}")
    name = config.get("backend")
    if name not in OPTIONS:
        raise GenerationError(f"key 'backend' must be one of {', '.join(OPTIONS)}, got {name!r}")
    model = config.get("model")
    if not isinstance(model, str) or not model.strip():
        raise GenerationError(
            f"key 'model' must be a non-empty string (a Hugging Face id or local path; for "
            f"http, the model name the server serves), got {model!r}"
        )
    allowed = OPTIONS[name]
    options = {k: v for k, v in config.items() if k not in ("backend", "model")}
    if "api_key" in options:
        raise GenerationError(
            "key 'api_key' is not accepted: never put a key in a config; set it in an "
            "environment variable of the workers and give that variable's name as 'api_key_env'"
        )
    for key, value in options.items():
        option = allowed.get(key)
        if option is None:
            raise GenerationError(
                f"unknown key {key!r} for backend {name!r}; allowed keys: backend, model, "
                f"{', '.join(allowed)}"
            )
        if not _fits(value, option):
            wanted = {int: "an integer", float: "a number", str: "a string"}[option.kind]
            raise GenerationError(
                f"key {key!r} ({option.help}) must be {wanted}"
                f"{' or null' if option.nullable else ''}, got {type(value).__name__} {value!r}"
            )
    for key in REQUIRED.get(name, ()):
        if key not in options:
            raise GenerationError(f"key {key!r} is required for backend {name!r}")
    return name, model, options


def _fits(value: Any, option: Option) -> bool:
    if value is None:
        return option.nullable
    if isinstance(value, bool):
        return False
    if option.kind is float:
        return isinstance(value, int | float)
    return isinstance(value, option.kind)
