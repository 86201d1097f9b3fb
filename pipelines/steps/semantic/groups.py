"""Duplicate pairs inside clusters, their groups, the eps table and ``semdedup``, which runs it all.

Pure functions of the vectors and their k-means assignment (see ``clusters``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.devices import resolve_device, synchronize
from pipelines.steps.semantic.clusters import _chunk_rows, _compute, _tensor, cluster_count, kmeans

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# Rules the pure functions apply; "longest" and "best_signal" need the database.
CENTROID_RULES = ("centroid_farthest", "centroid_nearest", "first")
EPS_REPORT = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2)
# A document keeps at most this many neighbours above the loosest threshold (its most
# similar ones), so ten thousand copies of a page yield ~32 pairs each, not 50 million
# in all; such a group still holds together through the pairs kept.
MAX_NEIGHBORS = 32


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
