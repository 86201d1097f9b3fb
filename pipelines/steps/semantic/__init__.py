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

Layout: ``clusters`` holds the k-means (faiss or torch) and the tensor block helpers,
``groups`` the duplicate pairs, their groups, the eps table and ``semdedup``, ``step`` the
``semantic_dedup`` step (registered when this package is imported).
"""

from __future__ import annotations

from pipelines.steps.semantic.clusters import (
    BLOCK_ELEMENTS,
    MAX_POINTS_PER_CENTROID,
    cluster_count,
    faiss_gpu_available,
    faiss_usable,
    kmeans,
)
from pipelines.steps.semantic.groups import (
    CENTROID_RULES,
    EPS_REPORT,
    MAX_NEIGHBORS,
    Pairs,
    SemDedupResult,
    components,
    duplicate_pairs,
    eps_table,
    group_count,
    kept_members,
    pair_similarity,
    semdedup,
    similarity_to,
)
from pipelines.steps.semantic.step import KEEP_RULES, SemanticDedup

__all__ = [
    "BLOCK_ELEMENTS",
    "CENTROID_RULES",
    "EPS_REPORT",
    "KEEP_RULES",
    "MAX_NEIGHBORS",
    "MAX_POINTS_PER_CENTROID",
    "Pairs",
    "SemDedupResult",
    "SemanticDedup",
    "cluster_count",
    "components",
    "duplicate_pairs",
    "eps_table",
    "faiss_gpu_available",
    "faiss_usable",
    "group_count",
    "kept_members",
    "kmeans",
    "pair_similarity",
    "semdedup",
    "similarity_to",
]
