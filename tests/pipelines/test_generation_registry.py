from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from pipelines.devices import load_once
from pipelines.generation.base import GenerationError, GenerationParams
from pipelines.generation.http_backend import HttpBackend
from pipelines.generation.registry import backend_from_config
from pipelines.generation.transformers_backend import TransformersBackend
from tests.pipelines.test_perplexity import TinyLM, tiny_lm

__all__ = ["tiny_lm"]  # the perplexity tests' fixture: a tiny GPT-2 and its BPE tokenizer

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.timeout(120)  # a deadlock in the nested load_once would hang
def test_a_transformers_config_builds_its_backend_once(tiny_lm: TinyLM) -> None:
    config = {"backend": "transformers", "model": str(tiny_lm.path), "batch_size": 4}
    backend = backend_from_config(config)
    assert isinstance(backend, TransformersBackend)
    assert backend_from_config(dict(config)) is backend
    described = backend.describe()
    assert (described["device"], described["dtype"], described["batch_size"]) == (
        "cpu",
        "float32",
        4,
    )
    # The model itself is shared with any other step that loads it (perplexity), and a step
    # that caches the backend under its own key does not deadlock on the nested load.
    other = load_once(
        ("a step's own key", str(tiny_lm.path)),
        lambda: backend_from_config({**config, "max_batch_tokens": 512}),
    )
    assert other is not backend and other.lm is backend.lm  # type: ignore[attr-defined]
    (result,) = other.generate(["Return the"], GenerationParams(max_new_tokens=3))
    assert result.completion_tokens >= 1


def test_an_http_config_builds_its_backend() -> None:
    backend = backend_from_config(
        {
            "backend": "http",
            "model": "served-model",
            "base_url": "http://127.0.0.1:8000",
            "concurrency": 2,
            "timeout_s": 5,
            "max_retries": 0,
        }
    )
    assert isinstance(backend, HttpBackend)
    assert backend.describe() == {
        "backend": "http",
        "model": "served-model",
        "base_url": "http://127.0.0.1:8000/v1",
        "concurrency": 2,
        "timeout_s": 5,
        "max_retries": 0,
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model": "m"}, "key 'backend' must be one of transformers, vllm, http"),
        ({"backend": "onnx", "model": "m"}, "key 'backend' must be one of"),
        ({"backend": "transformers"}, "key 'model' must be a non-empty string"),
        ({"backend": "transformers", "model": "m", "devise": "cpu"}, "unknown key 'devise'"),
        ({"backend": "transformers", "model": "m", "batch_size": "8"}, "key 'batch_size'"),
        ({"backend": "transformers", "model": "m", "batch_size": True}, "key 'batch_size'"),
        ({"backend": "http", "model": "m"}, "key 'base_url' is required"),
        ({"backend": "http", "model": "m", "base_url": "http://h", "timeout_s": "5"}, "timeout_s"),
        ({"backend": "http", "model": "m", "base_url": "http://h", "api_key": "sk"}, "api_key_env"),
        ({"backend": "http", "model": "m", "base_url": "http://h", "batch_size": 2}, "batch_size"),
        ({"backend": "vllm", "model": "m", "max_model_len": 1.5}, "key 'max_model_len'"),
    ],
)
def test_bad_configs_name_the_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(GenerationError, match=message):
        backend_from_config(config)


def test_a_wrong_type_says_what_was_given() -> None:
    with pytest.raises(GenerationError) as caught:
        backend_from_config({"backend": "http", "model": "m", "base_url": "h", "concurrency": "8"})
    assert "'concurrency'" in str(caught.value)
    assert "must be an integer, got str '8'" in str(caught.value)


def test_bad_option_values_are_refused_by_the_backend(tmp_path: Path) -> None:
    with pytest.raises(GenerationError, match="unknown device 'tpu'"):
        backend_from_config({"backend": "transformers", "model": str(tmp_path), "device": "tpu"})
    with pytest.raises(GenerationError, match="base_url must start with http"):
        backend_from_config({"backend": "http", "model": "m", "base_url": "gpu-host:8000"})


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed: the backend's own test runs instead")
def test_the_vllm_backend_without_vllm_says_how_to_install_it() -> None:
    with pytest.raises(GenerationError, match=r"pip install 'winnow\[vllm\]'"):
        backend_from_config({"backend": "vllm", "model": "any"})
