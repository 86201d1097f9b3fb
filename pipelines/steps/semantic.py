"""Semantic deduplication (SemDeDup, Abbas et al. 2023): near duplicates in meaning.

Embed every document, k-means the vectors into many clusters, compare documents
pairwise only inside their cluster, and call two documents duplicates when their
cosine similarity is at least ``1 - eps``; duplicates are grouped transitively
(union-find) and one document per group is kept.

The step has two parts, like the other dedup steps: in the document phase the
runner stores each document's vector (``vector_model`` / ``embed``), and the corpus
phase (``pipelines.services.corpus.semantic_dedup_phase``) loads them and calls
the functions below. Those are pure (numpy and torch; faiss when it is
installed) and import nothing from Django, so a benchmark runs them on a GPU host
that has only torch and numpy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.devices import resolve_device, synchronize
from pipelines.steps.base import Param, SignalSpec, StepParamError, register
from pipelines.steps.dedup import KEEP_PARAMS, check_keep
from pipelines.steps.embedding import EMBEDDING_PARAMS, EmbeddingStep

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

KEEP_RULES = ("centroid_farthest", "centroid_nearest", "longest", "first", "best_signal")
# Rules the pure functions apply; "longest" and "best_signal" need the database.
CENTROID_RULES = ("centroid_farthest", "centroid_nearest", "first")
EPS_REPORT = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2)
# k-means trains on at most this many points per centroid (faiss's default), then
# assigns every point: about the same clusters, training N / (256 k) times cheaper.
MAX_POINTS_PER_CENTROID = 256
# A document keeps at most this many neighbours above the loosest threshold (its most
# similar ones), so ten thousand copies of a page yield ~32 pairs each, not 50 million
# in all; such a group still holds together through the pairs kept.
MAX_NEIGHBORS = 32
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


@dataclass
class Pairs:
    """Duplicate pairs: positions ``i < j`` and their float32 cosine ``sim``, sorted by (i, j)."""

    i: np.ndarray
    j: np.ndarray
    sim: np.ndarray
    threshold: float

    def __len__(self) -> int:
        return int(self.i.shape[0])

    def at(self, threshold: float) -> Pairs:
        """The pairs at least ``threshold`` similar (a stricter threshold than this one's)."""
        mask = self.sim >= threshold
        return Pairs(self.i[mask], self.j[mask], self.sim[mask], max(threshold, self.threshold))


def duplicate_pairs(
    vectors: Any,
    assignment: np.ndarray,
    threshold: float,
    device: str = "cpu",
    *,
    max_neighbors: int = MAX_NEIGHBORS,
) -> Pairs:
    """Pairs of vectors in the same cluster whose cosine is at least ``threshold``.

    1. Sort positions by cluster; for each cluster, multiply row blocks of its
       members by the members after them (the upper triangle only), so a block is
       at most BLOCK_ELEMENTS similarities: no N x N matrix, and a huge cluster is
       cut into as many blocks as it needs. float16 on a GPU, float32 on the CPU.
    2. Keep each row's hits, its ``max_neighbors`` most similar when it has more.
    3. Recompute each hit's cosine in float32 from the stored vectors and keep
       those at least ``threshold``: the reported similarities are exact, whatever
       precision the blocks used (a small margin in step 1 keeps rounding from
       losing pairs at the threshold).
    """
    import torch

    device = resolve_device(device)
    x = _tensor(vectors, device)
    assignment = np.asarray(assignment, dtype=np.int64)
    margin = 2e-3 if x.dtype == torch.float16 and x.is_cuda else 1e-5
    candidate = threshold - margin
    order = torch.from_numpy(np.argsort(assignment, kind="stable")).to(x.device)
    sizes = np.bincount(assignment) if len(assignment) else np.zeros(0, dtype=np.int64)
    ends = np.cumsum(sizes)
    found_i: list[torch.Tensor] = []
    found_j: list[torch.Tensor] = []
    for cluster in np.flatnonzero(sizes >= 2):
        members = order[ends[cluster] - sizes[cluster] : ends[cluster]]
        block_vectors = _compute(x[members])
        size = len(members)
        rows = _chunk_rows(size, device)
        for start in range(0, size - 1, rows):
            stop = min(size, start + rows)
            block = block_vectors[start:stop] @ block_vectors[start:].T
            row = torch.arange(stop - start, device=x.device)
            column = torch.arange(size - start, device=x.device)
            block.masked_fill_(column[None, :] <= row[:, None], -2.0)
            hits = block >= candidate
            if max_neighbors and int(hits.sum(dim=1).max()) > max_neighbors:
                values, columns = block.topk(min(max_neighbors, block.shape[1]), dim=1)
                a, b = (values >= candidate).nonzero(as_tuple=True)
                b = columns[a, b]
            else:
                a, b = hits.nonzero(as_tuple=True)
            found_i.append(members[start + a])
            found_j.append(members[start + b])
    if not found_i:
        empty = np.zeros(0, dtype=np.int64)
        return Pairs(empty, empty.copy(), np.zeros(0, dtype=np.float32), threshold)
    i, j = torch.cat(found_i), torch.cat(found_j)
    sim = pair_similarity(x, i, j)
    keep = sim >= threshold
    low, high = torch.minimum(i, j)[keep].cpu().numpy(), torch.maximum(i, j)[keep].cpu().numpy()
    exact = sim[keep].cpu().numpy().astype(np.float32)
    ordered = np.lexsort((high, low))
    return Pairs(low[ordered], high[ordered], exact[ordered], threshold)


def pair_similarity(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """float32 cosine of rows i and j of unit vectors ``x``, in bounded chunks."""
    import torch

    step = _chunk_rows(x.shape[1], "cuda" if x.is_cuda else "cpu")
    parts = [
        (x[i[s : s + step]].float() * x[j[s : s + step]].float()).sum(dim=1)
        for s in range(0, len(i), step)
    ]
    return torch.cat(parts) if parts else torch.zeros(0, device=x.device)


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the graph (n nodes, edges i-j): each node's smallest member.

    Union-find in whole-array steps (hook each edge's roots to the smaller one,
    then halve paths until every pointer is a root), so millions of edges cost a
    few numpy passes rather than a Python loop.
    """
    labels = np.arange(n, dtype=np.int64)
    if len(i) == 0:
        return labels
    while True:
        li, lj = labels[i], labels[j]
        if np.array_equal(li, lj):
            return labels
        low = np.minimum(li, lj)
        np.minimum.at(labels, li, low)
        np.minimum.at(labels, lj, low)
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped


def group_count(labels: np.ndarray) -> tuple[int, int]:
    """(groups of two or more, documents such groups would remove: all but one each)."""
    sizes = np.bincount(labels, minlength=len(labels))
    groups = int((sizes > 1).sum())
    return groups, int(sizes[sizes > 1].sum()) - groups


def eps_table(n: int, pairs: Pairs, eps_values: Sequence[float]) -> list[dict[str, Any]]:
    """For each eps (ascending): the groups and removed documents at cosine >= 1 - eps.

    One set of pairs, collected once at the loosest threshold, filtered per eps.
    """
    rows = []
    for eps in sorted(set(eps_values)):
        strict = pairs.at(1.0 - eps)
        groups, removed = group_count(components(n, strict.i, strict.j))
        rows.append({"eps": eps, "removed": removed, "groups": groups})
    return rows


def kept_members(labels: np.ndarray, *, rule: str, score: np.ndarray | None = None) -> np.ndarray:
    """For each position, the position of the kept member of its group (itself when alone).

    ``first`` keeps the lowest position (vectors are in id order, so the first
    imported); ``centroid_nearest`` / ``centroid_farthest`` keep the member most /
    least similar to its k-means centroid (``score``), the lowest position on ties.
    """
    if rule not in CENTROID_RULES:
        raise ValueError(f"keep={rule!r} needs the database; the pure rules are {CENTROID_RULES}")
    n = len(labels)
    kept = np.arange(n, dtype=np.int64)
    sizes = np.bincount(labels, minlength=n)
    grouped = np.flatnonzero(sizes[labels] > 1)
    if not len(grouped):
        return kept
    group = labels[grouped]
    if rule == "first":
        key = grouped.astype(np.float64)
    else:
        if score is None:
            raise ValueError(f"keep={rule!r} needs each vector's similarity to its centroid")
        key = -score[grouped] if rule == "centroid_nearest" else score[grouped]
    order = np.lexsort((grouped, key, group))
    ordered_group = group[order]
    starts = np.flatnonzero(np.r_[True, ordered_group[1:] != ordered_group[:-1]])
    winner = np.zeros(n, dtype=np.int64)
    winner[ordered_group[starts]] = grouped[order[starts]]
    kept[grouped] = winner[group]
    return kept


def similarity_to(vectors: Any, kept: np.ndarray, device: str = "cpu") -> np.ndarray:
    """float32 cosine of each vector to ``vectors[kept[p]]`` (1 for a kept one)."""
    import torch

    device = resolve_device(device)
    x = _tensor(vectors, device)
    index = torch.arange(len(kept), device=x.device)
    other = torch.from_numpy(np.asarray(kept, dtype=np.int64)).to(x.device)
    values = pair_similarity(x, index, other).cpu().numpy().astype(np.float32)
    values[kept == np.arange(len(kept))] = 1.0
    return values


def _centroid_similarity(
    x: torch.Tensor, centroids: np.ndarray, assignment: np.ndarray
) -> np.ndarray:
    import torch

    centre = torch.from_numpy(centroids).to(x.device)
    cluster = torch.from_numpy(assignment).to(x.device)
    step = _chunk_rows(x.shape[1], "cuda" if x.is_cuda else "cpu")
    parts = [
        (x[s : s + step].float() * centre[cluster[s : s + step]]).sum(dim=1)
        for s in range(0, x.shape[0], step)
    ]
    return torch.cat(parts).cpu().numpy().astype(np.float32)


@dataclass
class SemDedupResult:
    """What ``semdedup`` finds over n vectors (positions index the input rows)."""

    clusters: int
    assignment: np.ndarray  # int64 [n]: k-means cluster of each vector
    centroid_similarity: np.ndarray  # float32 [n]: cosine to its cluster's centroid
    pairs: Pairs  # at the loosest of eps and eps_report
    labels: np.ndarray  # int64 [n]: group at eps (its smallest position)
    table: list[dict[str, Any]]  # eps_table over eps_report and eps
    seconds: dict[str, float] = field(default_factory=dict)

    def groups(self) -> list[np.ndarray]:
        """Groups of two or more at eps: sorted positions, ordered by their first one."""
        sizes = np.bincount(self.labels, minlength=len(self.labels))
        grouped = np.flatnonzero(sizes[self.labels] > 1)
        order = np.lexsort((grouped, self.labels[grouped]))
        ordered = grouped[order]
        cuts = np.flatnonzero(np.diff(self.labels[ordered])) + 1
        return np.split(ordered, cuts) if len(ordered) else []


def semdedup(
    vectors: Any,
    *,
    clusters: int = 0,
    eps: float = 0.05,
    eps_report: Sequence[float] = EPS_REPORT,
    niter: int = 20,
    seed: int = 0,
    device: str = "cpu",
    backend: str = "auto",
) -> SemDedupResult:
    """k-means, pairs within clusters at the loosest eps, groups at ``eps``, the eps table.

    ``seconds`` holds each phase's wall time (the device synchronised).
    """
    device = resolve_device(device)
    n = len(vectors)
    k = cluster_count(n, clusters)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        no_pairs = Pairs(empty, empty.copy(), np.zeros(0, dtype=np.float32), 1.0 - eps)
        table = eps_table(0, no_pairs, [*eps_report, eps])
        return SemDedupResult(0, empty, np.zeros(0, dtype=np.float32), no_pairs, empty, table)
    x = _tensor(vectors, device)
    centroids, assignment = kmeans(x, k, niter=niter, seed=seed, device=device, backend=backend)
    centroid_similarity = _centroid_similarity(x, centroids, assignment)
    synchronize(device)
    seconds["kmeans"] = time.perf_counter() - started
    started = time.perf_counter()
    loosest = 1.0 - max([*eps_report, eps])
    pairs = duplicate_pairs(x, assignment, loosest, device)
    synchronize(device)
    seconds["pairs"] = time.perf_counter() - started
    started = time.perf_counter()
    strict = pairs.at(1.0 - eps)
    labels = components(n, strict.i, strict.j)
    table = eps_table(n, pairs, [*eps_report, eps])
    seconds["groups"] = time.perf_counter() - started
    logger.info(
        "semdedup: %d vectors, %d clusters, %d pairs at >= %.3f; %s",
        n,
        k,
        len(pairs),
        loosest,
        ", ".join(f"{name} {value:.2f}s" for name, value in seconds.items()),
    )
    return SemDedupResult(k, assignment, centroid_similarity, pairs, labels, table, seconds)


@register
class SemanticDedup(EmbeddingStep):
    """Near duplicates in meaning (SemDeDup): embeddings, k-means, cosine inside clusters.

    The document phase stores each document's vector of ``model``; the corpus phase
    clusters them (``clusters``, 0: about one per thousand documents), groups
    documents whose cosine is at least ``1 - eps``, keeps one per group by ``keep``
    (the paper keeps the one farthest from its cluster's centroid) and reports how
    many documents each eps of ``eps_report`` would remove.
    """

    name = "semantic_dedup"
    version = "1"
    description = (
        "Semantic near duplicates (SemDeDup): k-means, then cosine >= 1 - eps inside clusters."
    )
    device = "gpu"
    level = "corpus"
    params = (
        *EMBEDDING_PARAMS,
        Param("clusters", int, 0, "k-means clusters; 0: about one per 1,000 documents", minimum=0),
        Param(
            "eps",
            float,
            0.05,
            "documents with cosine similarity >= 1 - eps are duplicates",
            minimum=0,
            maximum=1,
        ),
        Param(
            "eps_report", tuple, EPS_REPORT, "eps values whose removal counts the run page shows"
        ),
        Param(
            "keep",
            str,
            "centroid_farthest",
            "which member of a group is kept: the one farthest from (the paper's) or nearest "
            "to its cluster's centroid, the longest, the first imported, or the one with the "
            "best value of keep_signal",
            choices=KEEP_RULES,
        ),
        *KEEP_PARAMS[1:],
        Param("seed", int, 0, "seed of the k-means initialisation"),
        Param("niter", int, 20, "k-means iterations", minimum=1, maximum=1000),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        check_keep(self)
        report = self.config["eps_report"]
        if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in report):
            raise StepParamError(f"step {self.name!r}: eps_report must be numbers, got {report!r}")
        if not all(0 <= e <= 1 for e in report):
            raise StepParamError(f"step {self.name!r}: each eps_report value must be in [0, 1]")
        self.config["eps_report"] = tuple(sorted({float(e) for e in report}))

    def corpus_signals(self) -> list[SignalSpec]:
        return [
            SignalSpec(
                "semantic_dedup_size", "int", "documents in its semantic duplicate group (1: none)"
            ),
            SignalSpec(
                "semantic_dedup_keep", "bool", "no semantic duplicate, or the one kept of its group"
            ),
            SignalSpec(
                "semantic_dedup_similarity",
                "float",
                "cosine similarity to the kept member of its group",
            ),
            SignalSpec("semantic_dedup_cluster", "int", "its k-means cluster"),
        ]
