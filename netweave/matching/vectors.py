"""Embedding vectors as the engine holds them: quantized so that every dot product is exact.

A unit vector is scaled by `scale` and rounded to integers held in float32. For two such
vectors every partial sum of their dot product is an integer below 2**24, where float32
counts every integer exactly, so any summation order (a BLAS kernel, one row or a block of
millions) gives bit-for-bit the same result. That is what lets an incremental refresh of a
few businesses equal a full refresh of the whole book. At 384 dimensions the scale is about
4,000, so quantizing moves a cosine by about 1e-4.
"""

from __future__ import annotations

import math

import numpy as np

_EXACT_LIMIT = 2**24  # float32 holds every integer below this


def scale_for(dimensions: int) -> float:
    """The largest scale whose dot products stay exact: for unit vectors a and b with
    |q - s*v| <= 0.5 per component, sum |q_a q_b| <= s^2 + s*sqrt(d) + d/4 < 2**24."""
    d = max(dimensions, 1)
    limit = _EXACT_LIMIT - 1 - d / 4
    return float(math.floor((-math.sqrt(d) + math.sqrt(d + 4 * limit)) / 2))


def quantize(vectors: np.ndarray, scale: float) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    if (norms > 1.0001).any():  # the bound assumes unit vectors; a model that does not normalise gets normalised
        vectors = vectors / np.maximum(norms, 1.0)
    return np.rint(vectors * np.float32(scale)).astype(np.float32)


def cosine(dots: np.ndarray, scale: float) -> np.ndarray:
    """Cosine similarities from the exact dot products of quantized vectors (in place)."""
    dots *= np.float32(1.0 / (scale * scale))
    return dots
