"""Spherical k-means of the stored vectors, faiss when it can run on the device, else torch.

The vectors become torch tensors on the device and are multiplied in row blocks of at most
BLOCK_ELEMENTS similarities; the helpers that do so serve ``groups`` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.devices import resolve_device

if TYPE_CHECKING:
    import torch

# k-means trains on at most this many points per centroid (faiss's default), then
# assigns every point: about the same clusters, training N / (256 k) times cheaper.
MAX_POINTS_PER_CENTROID = 256
# Elements of one similarity block (rows x cluster members): bounds memory per cluster.
BLOCK_ELEMENTS = {"cpu": 1 << 23, "cuda": 1 << 27}


def cluster_count(n: int, requested: int = 0) -> int:
    """Clusters for ``n`` vectors: ``requested``, or about n / 1000 when 0; within [1, n]."""
    if n <= 0:
        return 0
    k = requested if requested > 0 else round(n / 1000)
    return max(1, min(n, k))


def faiss_gpu_available() -> bool:
    try:
        import faiss
    except ImportError:
        return False
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def faiss_usable(device: str) -> bool:
    """Whether faiss is installed and can run on ``device`` (a GPU needs faiss-gpu)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return device == "cpu" or faiss_gpu_available()


def _tensor(vectors: Any, device: str) -> torch.Tensor:
    """The vectors as a torch tensor on ``device``: float16 on a GPU, stored dtype on the CPU.

    The CPU keeps float16 storage (half the memory) and widens each block to
    float32 before multiplying (half-precision matmul is slow there).
    """
    import torch

    x = vectors if isinstance(vectors, torch.Tensor) else torch.from_numpy(np.asarray(vectors))
    if device.startswith("cuda"):
        return x.to(device=device, dtype=torch.float16)
    return x.to(device="cpu")


def _compute(block: torch.Tensor) -> torch.Tensor:
    import torch

    return block if block.is_cuda else block.to(torch.float32)


def _chunk_rows(width: int, device: str) -> int:
    return max(1, BLOCK_ELEMENTS["cuda" if device.startswith("cuda") else "cpu"] // max(1, width))


def _nearest(x: torch.Tensor, centroids: torch.Tensor, device: str) -> torch.Tensor:
    """Index of each row's most similar centroid (inner product), in row chunks."""
    import torch

    c = centroids.to(x.dtype if x.is_cuda else torch.float32)
    step = _chunk_rows(c.shape[0], device)
    parts = [
        (_compute(x[start : start + step]) @ c.T).argmax(dim=1)
        for start in range(0, x.shape[0], step)
    ]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long, device=x.device)


def _kmeans_torch(
    x: torch.Tensor, k: int, *, niter: int, seed: int, device: str
) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (cosine) in plain torch: a subsample trains, every point is assigned.

    1. Draw at most MAX_POINTS_PER_CENTROID * k training points and k of them as
       the first centroids (seeded).
    2. ``niter`` times: assign each training point to its nearest centroid, set each
       centroid to the normalised mean of its points; an empty cluster restarts
       from a random training point.
    3. Assign every point to its nearest centroid.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    size = min(n, k * MAX_POINTS_PER_CENTROID)
    sample = torch.randperm(n, generator=generator)[:size].to(x.device)
    train = x[sample]
    centroids = _compute(train[torch.randperm(size, generator=generator)[:k].to(x.device)])
    centroids = torch.nn.functional.normalize(centroids.float(), dim=1)
    step = _chunk_rows(train.shape[1], device)
    for _ in range(niter):
        assignment = _nearest(train, centroids, device)
        sums = torch.zeros_like(centroids)
        for start in range(0, size, step):
            sums.index_add_(
                0, assignment[start : start + step], train[start : start + step].float()
            )
        counts = torch.bincount(assignment, minlength=k)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            pick = torch.randint(size, (len(empty),), generator=generator).to(x.device)
            sums[empty] = train[pick].float()
        centroids = torch.nn.functional.normalize(sums, dim=1)
    assignment = _nearest(x, centroids, device)
    return centroids.cpu().numpy(), assignment.cpu().numpy().astype(np.int64)


def _kmeans_faiss(
    vectors: Any, k: int, *, niter: int, seed: int, gpu: bool
) -> tuple[np.ndarray, np.ndarray]:
    """faiss.Kmeans (spherical) on a float32 training sample; assignment in float32 chunks."""
    import faiss
    import torch

    if isinstance(vectors, torch.Tensor):
        vectors = vectors.cpu().numpy()
    n, dim = vectors.shape
    size = min(n, k * MAX_POINTS_PER_CENTROID)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size, replace=False)) if size < n else np.arange(n)
    train = np.ascontiguousarray(vectors[sample], dtype=np.float32)
    clustering = faiss.Kmeans(
        dim,
        k,
        niter=niter,
        seed=seed,
        spherical=True,
        gpu=gpu,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=MAX_POINTS_PER_CENTROID,
    )
    clustering.train(train)
    step = _chunk_rows(k, "cpu")
    parts = []
    for start in range(0, n, step):
        chunk = np.ascontiguousarray(vectors[start : start + step], dtype=np.float32)
        parts.append(clustering.index.search(chunk, 1)[1][:, 0])
    return np.asarray(clustering.centroids, dtype=np.float32), np.concatenate(parts).astype(
        np.int64
    )


def kmeans(
    vectors: Any,
    k: int,
    *,
    niter: int = 20,
    seed: int = 0,
    device: str = "cpu",
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means of unit vectors: (centroids float32 [k, dim], assignment int64 [n]).

    ``vectors`` is a numpy array or a torch tensor (float16 or float32, rows
    L2-normalised). ``backend="auto"`` uses faiss when it is installed and can run
    on ``device`` (the CPU, or a GPU with faiss-gpu), plain torch otherwise (a GPU
    host without faiss-gpu); ``"faiss"`` or ``"torch"`` force one.
    """
    device = resolve_device(device)
    n = len(vectors)
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= n, got k={k} for n={n}")
    if backend not in ("auto", "faiss", "torch"):
        raise ValueError(f"unknown k-means backend {backend!r}: auto, faiss or torch")
    use_faiss = faiss_usable(device) if backend == "auto" else backend == "faiss"
    if use_faiss:
        return _kmeans_faiss(vectors, k, niter=niter, seed=seed, gpu=device.startswith("cuda"))
    return _kmeans_torch(_tensor(vectors, device), k, niter=niter, seed=seed, device=device)
