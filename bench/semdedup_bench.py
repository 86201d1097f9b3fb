"""SemDeDup's core on synthetic vectors: k-means, pairs inside clusters, grouping.

    python bench/semdedup_bench.py [--docs 1000000] [--device auto] [--queries N]

Needs torch and numpy only (faiss when installed; no Django, no database): it imports
``pipelines.steps.semantic``, which runs on a GPU host that has neither Django nor faiss.
Embedding is not timed (the vectors are made, not encoded).

Vectors, generated on the device (torch, ``--seed``): ``docs / 200`` random unit topic
directions; each document is its topic plus Gaussian noise of norm 1.5, normalised
(cosine ~0.3 between documents of a topic, ~0.55 to the topic); then ``--dup-frac`` of
the documents are replaced by near-copies of other ones (source plus noise of norm r,
r uniform in [0.05, 0.45], normalised: cosine ~0.90-0.999 to the source, around the
default eps of 0.05), at random positions. Stored float16, as the vector store keeps them.

Timed, the device synchronised, after an untimed warm-up of the same code on 20,000 of
the vectors: ``semantic.semdedup`` with the step's defaults (clusters = docs / 1000,
20 k-means iterations, eps 0.05, eps_report 0.01-0.2), phase by phase: ``kmeans``
(training on at most 256 points per centroid, then every vector assigned, and each one's
cosine to its centroid), ``pairs`` (cosine inside each cluster at the loosest eps, exact
float32 similarities) and ``groups`` (union-find at eps, plus the whole eps table).

Baseline, the same run, device and vectors: exact brute-force all-pairs search at eps
(chunked matmul, float16 on a GPU, float32 on the CPU; every pair above the threshold
collected). ``--queries`` documents (all of them by default on a GPU, 5,000 on the CPU)
are compared with every document; for a subsample the time is scaled to all pairs
(x docs / queries / 2: a full pass would compute each unordered pair once, the upper
triangle). Printed: the baseline's time, the ratio baseline / SemDeDup, and SemDeDup's
recall of the exact pairs of those queries (the paper reports 89-95%). On the CPU with
faiss installed, the k-means of faiss and of plain torch are timed too, same k and
iterations.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.devices import resolve_device, synchronize  # noqa: E402  (ROOT on sys.path first)
from pipelines.steps import semantic  # noqa: E402

WARM_UP_DOCS = 20_000


def make_vectors(docs: int, dim: int, dup_frac: float, seed: int, device: str) -> Any:
    """float16 [docs, dim] unit vectors with planted near-copies (see the module docstring)."""
    import torch

    generator = torch.Generator(device=device).manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, device=device)

    topics = torch.nn.functional.normalize(normal(max(1, docs // 200), dim), dim=1)
    topic = torch.randint(len(topics), (docs,), generator=generator, device=device)
    x = torch.empty(docs, dim, dtype=torch.float16, device=device)
    step = 1 << 18
    for start in range(0, docs, step):
        stop = min(docs, start + step)
        noisy = topics[topic[start:stop]] + normal(stop - start, dim) * (1.5 / dim**0.5)
        x[start:stop] = torch.nn.functional.normalize(noisy, dim=1).half()
    copies = int(docs * dup_frac)
    target = torch.randperm(docs, generator=generator, device=device)[:copies]
    source = torch.randint(docs, (copies,), generator=generator, device=device)
    for start in range(0, copies, step):
        stop = min(copies, start + step)
        radius = 0.05 + 0.4 * torch.rand(stop - start, 1, generator=generator, device=device)
        noisy = x[source[start:stop]].float() + normal(stop - start, dim) * (radius / dim**0.5)
        x[target[start:stop]] = torch.nn.functional.normalize(noisy, dim=1).half()
    return x


def brute_force(x: Any, queries: Any, threshold: float, device: str) -> tuple[float, Any]:
    """Exact pairs (query, other) with cosine >= threshold; (seconds, keys i * n + j, i < j)."""
    import torch

    n = x.shape[0]
    rows = max(1, (1 << 30 if device.startswith("cuda") else 1 << 23) // n)
    full = len(queries) == n
    margin = 2e-3 if x.is_cuda else 1e-5  # as semdedup: candidates, then exact float32
    found_i, found_j = [], []
    synchronize(device)
    started = time.perf_counter()
    base = x if x.is_cuda else x.float()
    column = torch.arange(n, device=x.device)
    for start in range(0, len(queries), rows):
        index = queries[start : start + rows]
        sims = base[index] @ base.T
        # All pairs: the upper triangle only; a subsample: every other document.
        mask = column[None, :] > index[:, None] if full else column[None, :] != index[:, None]
        a, b = ((sims >= threshold - margin) & mask).nonzero(as_tuple=True)
        found_i.append(index[a])
        found_j.append(b)
    i, j = torch.cat(found_i), torch.cat(found_j)
    keep = semantic.pair_similarity(x, i, j) >= threshold
    keys = torch.unique(torch.minimum(i, j)[keep] * n + torch.maximum(i, j)[keep])
    synchronize(device)
    return time.perf_counter() - started, keys


def describe(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    wait = os.environ.get("OMP_WAIT_POLICY", "default")
    return (
        f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={wait}, load {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )


def main() -> None:
    import numpy as np
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--clusters", type=int, default=0, help="0: docs / 1000")
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--niter", type=int, default=20)
    parser.add_argument("--dup-frac", type=float, default=0.1)
    parser.add_argument(
        "--queries", type=int, default=-1, help="default: all on a GPU, 5000 on the CPU"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = resolve_device(args.device)
    queries = args.queries if args.queries >= 0 else (args.docs if device != "cpu" else 5000)
    queries = min(queries, args.docs) or args.docs
    print(f"device: {describe(device)}")
    print(
        f"faiss: {'yes' if semantic.faiss_usable('cpu') else 'no'}, faiss-gpu: "
        f"{'yes' if semantic.faiss_gpu_available() else 'no'}"
    )

    started = time.perf_counter()
    x = make_vectors(args.docs, args.dim, args.dup_frac, args.seed, device)
    synchronize(device)
    print(
        f"vectors: {args.docs:,} x {args.dim} float16, {args.dup_frac:.0%} planted near-copies, "
        f"made in {time.perf_counter() - started:.1f}s (not timed below)"
    )

    settings: dict[str, Any] = {
        "eps": args.eps,
        "niter": args.niter,
        "seed": args.seed,
        "device": device,
    }
    warm = x[: min(WARM_UP_DOCS, args.docs)]
    semantic.semdedup(warm, clusters=max(1, len(warm) // 1000), **settings)

    synchronize(device)
    started = time.perf_counter()
    result = semantic.semdedup(x, clusters=args.clusters, **settings)
    synchronize(device)
    total = time.perf_counter() - started
    phases = ", ".join(f"{name} {value:.2f}s" for name, value in result.seconds.items())
    print(
        f"semdedup: {result.clusters:,} clusters, {len(result.pairs):,} pairs at cosine >= "
        f"{result.pairs.threshold:.2f}; {phases}; total {total:.2f}s "
        f"({args.docs / total:,.0f} vectors/s)"
    )
    if device != "cpu":
        print(f"goal < 60 s on one GPU: {'met' if total < 60 else 'MISSED'}")
    sizes = np.bincount(result.assignment)
    print(
        f"cluster sizes: min {sizes.min():,}, median {int(np.median(sizes)):,}, max {sizes.max():,}"
    )
    for row in result.table:
        mark = "  <- eps" if row["eps"] == args.eps else ""
        print(
            f"  eps {row['eps']:<5} removed {row['removed']:>9,} in {row['groups']:>8,} groups"
            f"{mark}"
        )

    generator = torch.Generator().manual_seed(args.seed + 1)
    chosen = torch.randperm(args.docs, generator=generator)[:queries].sort().values.to(x.device)
    threshold = 1.0 - args.eps
    brute_seconds, exact = brute_force(x, chosen, threshold, device)
    scale = 1.0 if queries == args.docs else args.docs / queries / 2
    brute_total = brute_seconds * scale
    strict = result.pairs.at(threshold)
    ours = torch.from_numpy(strict.i * args.docs + strict.j).to(x.device)
    if queries < args.docs:
        picked = torch.zeros(args.docs, dtype=torch.bool, device=x.device)
        picked[chosen] = True
        i_t, j_t = torch.from_numpy(strict.i).to(x.device), torch.from_numpy(strict.j).to(x.device)
        ours = ours[picked[i_t] | picked[j_t]]
    recall = float(torch.isin(exact, ours).float().mean()) if len(exact) else 1.0
    precision = float(torch.isin(ours, exact).float().mean()) if len(ours) else 1.0
    how = "all pairs" if scale == 1.0 else f"{queries:,} queries x all, scaled x{scale:.1f}"
    print(
        f"baseline brute force ({how}): {brute_seconds:.2f}s measured, {brute_total:.2f}s for "
        f"all pairs; {len(exact):,} exact pairs at eps {args.eps}"
    )
    print(
        f"ratio brute force / semdedup: {brute_total / total:.1f}x; semdedup recall "
        f"{recall:.3f}, precision {precision:.3f} (of those queries' pairs)"
    )

    if device == "cpu" and semantic.faiss_usable("cpu"):
        timings = {}
        for backend in ("faiss", "torch"):
            started = time.perf_counter()
            semantic.kmeans(
                x, result.clusters, niter=args.niter, seed=args.seed, device=device, backend=backend
            )
            timings[backend] = time.perf_counter() - started
        print(
            f"k-means alone: faiss {timings['faiss']:.2f}s, torch {timings['torch']:.2f}s "
            f"(torch / faiss {timings['torch'] / timings['faiss']:.2f}x)"
        )


if __name__ == "__main__":
    main()
