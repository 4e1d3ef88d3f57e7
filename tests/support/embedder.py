"""A small deterministic stand-in for the sentence-transformers model, for property tests.

Each word gets a fixed pseudo-random direction (from a hash of the word); a text is the
normalised sum of its words. Texts sharing words are similar, as with a real model, and the
same text always gives the same vector, on any machine, in microseconds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np


class HashingEmbedder:
    def __init__(self, dimensions: int = 32):
        self.dimensions = dimensions
        self.name = f"test-hashing-{dimensions}"

    @lru_cache(maxsize=100_000)  # noqa: B019 - one embedder per test session
    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        return np.random.default_rng(seed).standard_normal(self.dimensions)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.zeros((len(texts), self.dimensions))
        for n, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                rows[n] += self._word(word)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return (rows / np.where(norms > 0, norms, 1)).astype(np.float32)
