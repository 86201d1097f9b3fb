"""Text generation with vLLM's offline engine (``vllm.LLM``), where vLLM is installed.

vLLM is an optional extra (``pip install 'winnow[vllm]'`` on a GPU host), never needed by the
web app. It runs on the device its build is for: a CUDA build on a GPU, the CPU build
(``make test-vllm`` installs one in its own environment and runs the backend's tests there).

Chat prompts go through the tokenizer's chat template (or the plain ``role: content``
fallback, as the transformers backend does), then all prompts of a call go to ``LLM.generate``
at once: vLLM schedules them itself (continuous batching, paged KV cache). Each request gets
``params.seed``, so a seeded sampling result does not depend on what else is in the call.
The engine is built once per process (``load_once``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from pipelines.devices import DeviceError, load_once, resolve_dtype, resolve_model_path
from pipelines.generation.backend_utils import (
    PLAIN_CHAT_FORMAT,
    check_prompts,
    cut_at_stop,
    plain_chat_text,
)
from pipelines.generation.base import Backend, Generation, GenerationError, GenerationParams, Prompt

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "the vllm backend needs the vllm package, which is not installed here: on a GPU host run "
    "`pip install 'winnow[vllm]'` (or `pip install vllm`), or use backend 'transformers' "
    "(any device) or 'http' (a running vLLM or TGI server)"
)


def vllm_device(vllm: Any) -> str:
    """``cuda`` or ``cpu`` (or another device type): what this vLLM build runs on."""
    try:
        from vllm.platforms import current_platform
    except ImportError:  # an older layout: assume the usual CUDA build
        return "cuda"
    return str(getattr(current_platform, "device_type", "cuda") or "cuda")


def import_vllm() -> Any:
    """The ``vllm`` module, or ``GenerationError`` saying how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise GenerationError(f"{INSTALL_HINT} ({exc})") from exc
    return vllm


class VllmBackend(Backend):
    """vLLM's engine in this process; ``ignore_eos`` makes every row ``max_new_tokens`` long."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        ignore_eos: bool = False,
    ) -> None:
        super().__init__(model)
        vllm = import_vllm()
        if not 0 < gpu_memory_utilization <= 1:
            raise GenerationError(
                f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}"
            )
        self.device = vllm_device(vllm)
        try:  # half precision on a GPU; float32 on the CPU unless asked otherwise
            torch_dtype = resolve_dtype(
                "cuda" if self.device == "cuda" else "cpu", dtype, prefer="bfloat16"
            )
        except DeviceError as exc:
            raise GenerationError(str(exc)) from exc
        self.dtype = str(torch_dtype).removeprefix("torch.")
        self.gpu_memory_utilization = gpu_memory_utilization
        self.max_model_len = max_model_len
        self.tensor_parallel_size = tensor_parallel_size
        self.ignore_eos = ignore_eos
        path = resolve_model_path(model)
        engine_args: dict[str, Any] = {
            "model": path,
            "dtype": self.dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "seed": 0,
        }
        if self.device == "cuda":  # the CPU build sizes its KV cache by VLLM_CPU_KVCACHE_SPACE
            engine_args["gpu_memory_utilization"] = gpu_memory_utilization
        if max_model_len is not None:
            engine_args["max_model_len"] = max_model_len
        key = ("vllm", *sorted(engine_args.items()))
        try:
            self.llm = load_once(key, lambda: vllm.LLM(**engine_args))
        except (OSError, ValueError, RuntimeError) as exc:
            raise GenerationError(f"vLLM cannot load model {model!r}: {exc}") from exc
        self.tokenizer = self.llm.get_tokenizer()
        self.has_template = bool(getattr(self.tokenizer, "chat_template", None))

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(
            device=self.device,
            dtype=self.dtype,
            gpu_memory_utilization=self.gpu_memory_utilization,
            max_model_len=self.max_model_len,
            tensor_parallel_size=self.tensor_parallel_size,
            vllm_version=getattr(import_vllm(), "__version__", "unknown"),
            chat_format="tokenizer chat template" if self.has_template else PLAIN_CHAT_FORMAT,
        )
        if self.ignore_eos:
            info["ignore_eos"] = True
        return info

    def render(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        if self.has_template:
            return str(
                self.tokenizer.apply_chat_template(
                    prompt, tokenize=False, add_generation_prompt=True
                )
            )
        return plain_chat_text(prompt)

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        vllm = import_vllm()
        check_prompts(prompts)
        sampling = vllm.SamplingParams(
            n=1,
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=list(params.stop) or None,
            ignore_eos=self.ignore_eos,
        )
        started = time.perf_counter()
        outputs = self.llm.generate([self.render(p) for p in prompts], sampling, use_tqdm=False)
        results = []
        for index, output in enumerate(outputs):
            completion = output.outputs[0]
            if completion.finish_reason not in ("stop", "length"):
                raise GenerationError(
                    f"prompt {index}: vLLM ended the request with {completion.finish_reason!r}"
                )
            text, stopped = cut_at_stop(completion.text, params.stop)
            results.append(
                Generation(
                    text=text,
                    prompt_tokens=len(output.prompt_token_ids or ()),
                    completion_tokens=len(completion.token_ids),
                    finish_reason="stop" if stopped else completion.finish_reason,
                )
            )
        logger.info(
            "vLLM generated %d tokens for %d prompts in %.2fs",
            sum(r.completion_tokens for r in results),
            len(results),
            time.perf_counter() - started,
        )
        return results
