"""A FAISS index over a dataset's embeddings, for "similar documents" and semantic search.

The step stores each document's vector in its document phase (like ``embed``);
its corpus phase (``pipelines.services.similarity``) builds the index from the
stored vectors. Inner product over L2-normalised vectors is cosine similarity.
Vectors are kept in float16 inside the index (faiss's scalar quantizer) to halve
its memory: 1M x 384 takes about 770 MB.

Up to ``exact_below`` documents the index is exact (a flat scan); above it, an
inverted file with ``nlist`` lists (0: about 4 sqrt(N)) probed ``nprobe`` at a time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pipelines.steps.base import Param, register
from pipelines.steps.embedding import EMBEDDING_PARAMS, EmbeddingStep

# Vectors converted to float32 and added at once while building (bounds the copy).
ADD_CHUNK = 65536
# Training points per inverted list (faiss warns below 39).
TRAIN_PER_LIST = 64


def build_index(vectors: np.ndarray, *, exact_below: int, nlist: int = 0, seed: int = 1) -> Any:
    """A faiss index over ``vectors`` (rows already L2-normalised), positions = row numbers."""
    import faiss

    n, dim = vectors.shape
    if n == 0:
        raise ValueError("no vectors to index")
    index: Any
    if n < exact_below:
        index = faiss.IndexScalarQuantizer(
            dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
    else:
        lists = nlist or max(1, int(4 * math.sqrt(n)))
        lists = min(lists, max(1, n // TRAIN_PER_LIST))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, lists, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, size=min(n, lists * TRAIN_PER_LIST * 4), replace=False))
        index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    for start in range(0, n, ADD_CHUNK):
        index.add(np.ascontiguousarray(vectors[start : start + ADD_CHUNK], dtype=np.float32))
    return index


def search(
    index: Any, queries: np.ndarray, k: int, *, nprobe: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, positions) [len(queries), k]; positions are -1 where fewer were found."""
    import faiss

    if hasattr(index, "nprobe"):
        faiss.extract_index_ivf(index).nprobe = nprobe
    k = max(1, min(k, index.ntotal))
    scores, positions = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, positions


@register
class SimilarityIndex(EmbeddingStep):
    """Build the dataset's nearest-neighbour index (document pages, search box)."""

    name = "similarity_index"
    version = "1"
    description = "FAISS index over the documents' embeddings: similar documents and search."
    device = "gpu"  # the document phase embeds; the index itself is built on the CPU
    level = "corpus"
    params = (
        *EMBEDDING_PARAMS,
        Param(
            "exact_below",
            int,
            200_000,
            "documents below which the index is an exact scan (above: inverted lists)",
            minimum=1,
        ),
        Param("nlist", int, 0, "inverted lists (0: about 4 x sqrt(documents))", minimum=0),
        Param("nprobe", int, 16, "lists searched per query (recall vs speed)", minimum=1),
    )
