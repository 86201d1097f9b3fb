"""Generation: our TransformersBackend vs a plain one-prompt-at-a-time ``model.generate`` loop.

    python bench/generate_bench.py --export-model .bench-assets/gpt2-random [--tiny]
    python bench/generate_bench.py --model .bench-assets/gpt2-random [--prompts 64]
        [--max-new-tokens 64] [--device auto] [--batch-size 64] [--rounds 2]

No Django and no database (checked at the end): it imports ``pipelines.generation`` and
``pipelines.devices`` only, so it runs on a GPU host that has torch and transformers alone.

Model: ``--export-model DIR`` writes a randomly initialised GPT-2 (``GPT2Config()`` sizes: 12
layers, width 768, context 1,024; ``--tiny``: 2 layers, width 128, for a CPU) and a byte-level
BPE tokenizer trained here on the standard library's docstrings (vocabulary up to 32,000), with
a small chat template, in bfloat16; nothing is downloaded.

Prompts: ``--prompts`` excerpts of docstrings (seed 0), lengths log-normal around 40 words
(5 to 150), so batches need padding. Both sides get the same list and generate exactly
``--max-new-tokens`` tokens per prompt, greedily (EOS suppressed: ``min_new_tokens`` for the
loop, ``ignore_eos`` for ours), so both produce the same number of tokens.

* ``loop``: per prompt, ``tokenizer(prompt)`` then ``model.generate(max_new_tokens=N,
  min_new_tokens=N, do_sample=False)``: the model as ours loads it (same weights, dtype and
  device: bfloat16 on a GPU, float32 on the CPU).
* ``ours``: ``TransformersBackend(...).generate(prompts, GenerationParams(max_new_tokens=N))``
  with ``--batch-size`` (its default 64) and its default token budget: tokenizing, length-sorted
  left-padded batches, decoding and all.
* ``vllm`` (when vllm is importable and built for this device: a CUDA build on a GPU, the CPU
  build that ``make test-vllm`` installs in ``.venv-vllm`` on a CPU): ``VllmBackend`` on the
  same model directory and prompts (``ignore_eos``), after the transformers model is freed.

Procedure: an untimed warm-up of each side on other prompts (on a GPU, also ours on the
timed prompts and the loop on the first 8 of them), then loop, ours, loop, ours...
(``--rounds``); CUDA is synchronized before every clock read. Prints generated tokens/s of each
side (medians), the ratios ours/loop and vllm/loop, and how many greedy texts ours and the loop
agree on (batched bfloat16 may differ from one-by-one in the last digits, and so in argmax).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EOT = "<|endoftext|>"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}" + EOT + "\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
MODULES = (
    "argparse ast asyncio base64 calendar codecs collections contextlib csv dataclasses datetime "
    "decimal difflib email enum fractions functools gzip hashlib heapq html http.client inspect "
    "io ipaddress itertools json logging mailbox math multiprocessing numbers os pathlib pickle "
    "pprint queue random re shutil socket sqlite3 ssl statistics string subprocess tarfile "
    "tempfile textwrap threading tkinter turtle typing unittest urllib.parse uuid warnings "
    "zipfile zoneinfo"
).split()


def docstrings() -> list[str]:
    """Docstrings of the standard library modules above and their members, in a fixed order."""
    out: list[str] = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for _, member in sorted(vars(module).items()):
            doc = inspect.getdoc(member) if callable(member) or inspect.ismodule(member) else None
            if doc and len(doc) > 40:
                out.append(doc)
    return sorted(set(out))


def make_prompts(count: int, seed: int) -> list[str]:
    """``count`` docstring excerpts, lengths log-normal around 40 words (5 to 150)."""
    rng = random.Random(seed)
    words = " ".join(docstrings()).split()
    prompts = []
    for _ in range(count):
        n = max(5, min(150, int(rng.lognormvariate(math.log(40), 0.7))))
        start = rng.randrange(0, len(words) - n)
        prompts.append(" ".join(words[start : start + n]))
    return prompts


def export_model(target: Path, tiny: bool) -> None:
    """A random GPT-2 (small-sized; 2 layers with ``tiny``) and a BPE tokenizer in ``target``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    started = time.perf_counter()
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        docstrings(),
        trainers.BpeTrainer(
            vocab_size=32000,
            special_tokens=[EOT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOT, bos_token=EOT)
    tokenizer.chat_template = CHAT_TEMPLATE
    eot = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=1024,
        n_embd=128 if tiny else 768,
        n_layer=2 if tiny else 12,
        n_head=2 if tiny else 12,
        bos_token_id=eot,
        eos_token_id=eot,
    )
    torch.manual_seed(0)
    model: Any = GPT2LMHeadModel(config)
    model = model.to(dtype=torch.bfloat16)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(
        f"wrote {target}: GPT-2 {'tiny (2 layers, width 128)' if tiny else 'small-sized'}, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters, vocabulary "
        f"{len(tokenizer)}, {size / 1e6:.0f} MB, in {time.perf_counter() - started:.1f}s"
    )


def plain_loop(backend: Any, prompts: list[str], max_new_tokens: int) -> tuple[int, list[str]]:
    """Generated tokens and texts of one ``model.generate`` call per prompt."""
    import torch

    model, tokenizer = backend.lm, backend.tokenizer
    tokens, texts = 0, []
    with torch.inference_mode():
        for prompt in prompts:
            encoded = tokenizer(prompt, return_tensors="pt").to(backend.device)
            out = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=backend.pad_id,
            )
            new = out[0, encoded["input_ids"].shape[1] :]
            tokens += int(new.shape[0])
            texts.append(tokenizer.decode(new, skip_special_tokens=True))
    return tokens, texts


def timed(device: str, work: Callable[[], tuple[int, list[str]]]) -> tuple[float, int, list[str]]:
    from pipelines.devices import synchronize

    synchronize(device)
    started = time.perf_counter()
    tokens, texts = work()
    synchronize(device)
    return time.perf_counter() - started, tokens, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="", help="a causal LM directory (--export-model)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=64, help="ours: prompts per batch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--vllm-memory", type=float, default=0.6, help="vLLM's GPU share")
    parser.add_argument("--export-model", type=Path, default=None, help="write a model here")
    parser.add_argument("--tiny", action="store_true", help="with --export-model: 2 layers")
    args = parser.parse_args()
    if args.export_model:
        export_model(args.export_model, args.tiny)
        return
    if not args.model:
        parser.error("--model DIR is required (write one with --export-model DIR)")

    import torch

    from pipelines.generation.base import GenerationParams
    from pipelines.generation.transformers_backend import TransformersBackend

    ours = TransformersBackend(
        args.model, device=args.device, batch_size=args.batch_size, ignore_eos=True
    )
    device = ours.device
    name = (
        torch.cuda.get_device_name(torch.device(device))
        if device.startswith("cuda")
        else f"CPU ({torch.get_num_threads()} torch threads, {os.cpu_count()} cores)"
    )
    config = ours.lm.config
    print(
        f"device: {name}; torch {torch.__version__}; model {args.model}: "
        f"{config.num_hidden_layers} layers, width {config.hidden_size}, vocabulary "
        f"{config.vocab_size}, {ours.describe()['dtype']}"
    )
    prompts = make_prompts(args.prompts, seed=0)
    warm = make_prompts(4, seed=1)
    lengths = [len(ids) for ids in ours.encode(prompts)]
    new = args.max_new_tokens
    params = GenerationParams(max_new_tokens=new)
    print(
        f"prompts: {len(prompts)}, {min(lengths)}-{max(lengths)} tokens (mean "
        f"{statistics.mean(lengths):.0f}); {new} new tokens each; ours: batch_size "
        f"{ours.batch_size}, max_batch_tokens {ours.max_batch_tokens}; load {load()}"
    )

    def run_ours() -> tuple[int, list[str]]:
        results = ours.generate(prompts, params)
        return sum(r.completion_tokens for r in results), [r.text for r in results]

    plain_loop(ours, warm, 8)
    ours.generate(warm, GenerationParams(max_new_tokens=8))
    if device.startswith("cuda"):
        # Every batch shape of the timed runs once, untimed (kernel selection, the allocator's
        # growth); the loop's shapes are one row each, met within its first prompts.
        ours.generate(prompts, params)
        plain_loop(ours, prompts[:8], new)
    seconds: dict[str, list[float]] = {"loop": [], "ours": []}
    texts: dict[str, list[str]] = {}
    expected = len(prompts) * new
    for _ in range(args.rounds):
        elapsed, tokens, texts["loop"] = timed(device, lambda: plain_loop(ours, prompts, new))
        assert tokens == expected, f"the loop generated {tokens} tokens, not {expected}"
        seconds["loop"].append(elapsed)
        elapsed, tokens, texts["ours"] = timed(device, run_ours)
        assert tokens == expected, f"ours generated {tokens} tokens, not {expected}"
        seconds["ours"].append(elapsed)
    speed = {side: expected / statistics.median(runs) for side, runs in seconds.items()}
    for side, runs in seconds.items():
        print(
            f"{side}: {speed[side]:,.0f} generated tokens/s "
            f"(runs {', '.join(f'{s:.2f}s' for s in runs)})"
        )
    print(f"ratio ours/loop: {speed['ours'] / speed['loop']:.2f}")
    same = sum(a == b for a, b in zip(texts["loop"], texts["ours"], strict=True))
    print(f"greedy texts identical, ours vs loop: {same}/{len(prompts)}")

    vllm_kind = vllm_device()
    if vllm_kind is not None and device.startswith(vllm_kind):
        run_vllm(args, prompts, params, speed["loop"], expected, device)
    else:
        print(
            f"vllm: not run (installed: {vllm_kind or 'no'}; it runs where its build's "
            f"device is this one, {device})"
        )
    print(f"django imported: {'yes' if 'django' in sys.modules else 'no'}")


def vllm_device() -> str | None:
    """The device type of the installed vLLM build (``cuda``, ``cpu``), None without vLLM."""
    if importlib.util.find_spec("vllm") is None:
        return None
    from pipelines.generation.vllm_backend import import_vllm
    from pipelines.generation.vllm_backend import vllm_device as device_of

    return device_of(import_vllm())


def run_vllm(
    args: argparse.Namespace,
    prompts: list[str],
    params: Any,
    loop_speed: float,
    expected: int,
    device: str,
) -> None:
    """vLLM's tokens/s on the same prompts, after the transformers model is freed."""
    import gc

    import torch

    from pipelines.devices import clear_cache
    from pipelines.generation.base import GenerationParams
    from pipelines.generation.vllm_backend import VllmBackend

    clear_cache()
    gc.collect()
    gpu = device.startswith("cuda")
    if gpu:
        torch.cuda.empty_cache()
    else:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB
    started = time.perf_counter()
    backend = VllmBackend(
        args.model, gpu_memory_utilization=args.vllm_memory, max_model_len=1024, ignore_eos=True
    )
    print(
        f"vllm {backend.describe()['vllm_version']}: engine built in "
        f"{time.perf_counter() - started:.0f}s"
    )
    backend.generate(make_prompts(4, seed=1), GenerationParams(max_new_tokens=8))
    runs = []
    for _ in range(args.rounds):
        if gpu:
            torch.cuda.synchronize()
        started = time.perf_counter()
        results = backend.generate(prompts, params)
        if gpu:
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - started)
        tokens = sum(r.completion_tokens for r in results)
        assert tokens == expected, f"vllm generated {tokens} tokens, not {expected}"
    speed = expected / statistics.median(runs)
    print(
        f"vllm: {speed:,.0f} generated tokens/s (runs {', '.join(f'{s:.2f}s' for s in runs)}); "
        f"ratio vllm/loop: {speed / loop_speed:.2f}"
    )


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


if __name__ == "__main__":
    main()
