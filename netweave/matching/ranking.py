"""Choosing the best of many, deterministically: ties are broken by each business's key, so
a row's choice never depends on how the book was loaded or which rows were ranked with it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def top_k(
    scores: np.ndarray, columns: np.ndarray, keys: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the k best finite entries by (score descending, key ascending).

    `scores` and `columns` are rows x m (positions of the candidates), `keys` the tiebreak key
    of every position. Returns the chosen columns (rows x k, -1 padded) and their scores
    (-inf padded), best first, and each row's floor: the k-th best score when the row had k
    finite candidates, else -inf (anything finite could still enter).
    """
    rows, m = scores.shape
    chosen = np.full((rows, k), -1, dtype=np.int64)
    chosen_scores = np.full((rows, k), -np.inf, dtype=np.float32)
    floor = np.full(rows, -np.inf, dtype=np.float32)
    if rows == 0 or m == 0 or k == 0:
        return chosen, chosen_scores, floor
    take = min(k, m)
    best = np.argpartition(-scores, take - 1, axis=1)[:, :take]
    kth = np.take_along_axis(scores, best, axis=1).min(axis=1)
    # Where ties straddle the k-th place, argpartition's pick among them is arbitrary: redo
    # those rows in full, by score then key.
    above = (scores > kth[:, None]).sum(axis=1)
    level = (scores == kth[:, None]).sum(axis=1)
    for r in np.flatnonzero(np.isfinite(kth) & (above + level > take)).tolist():
        candidates = np.flatnonzero(scores[r] >= kth[r])
        order = np.lexsort((keys[columns[r, candidates]], -scores[r, candidates]))
        best[r] = candidates[order[:take]]
    picked_scores = np.take_along_axis(scores, best, axis=1)
    picked_columns = np.take_along_axis(columns, best, axis=1)
    order = np.lexsort((keys[picked_columns], -picked_scores), axis=-1)
    picked_scores = np.take_along_axis(picked_scores, order, axis=1)
    picked_columns = np.take_along_axis(picked_columns, order, axis=1)
    finite = np.isfinite(picked_scores)
    chosen[:, :take] = np.where(finite, picked_columns, -1)
    chosen_scores[:, :take] = np.where(finite, picked_scores, -np.inf)
    if take == k:
        floor = np.where(finite[:, -1], picked_scores[:, -1], -np.inf).astype(np.float32)
    return chosen, chosen_scores, floor


def choose_with_variety(
    pool: Sequence[tuple[int, float]],
    kind_of: Sequence[int],
    far: Sequence[bool],
    unknown_kind: int,
    top_n: int,
    max_per_kind: int,
) -> list[tuple[int, float]]:
    """The top_n of a pool (best first, as `top_k` orders it): local first, varied, and far
    only where it adds something.

    In turn, best first within each pass: local entries while their kind has fewer than
    `max_per_kind` in the list (a florist hears of a planner, a venue and a photographer
    rather than three planners); far entries of a kind no local entry brought; then, only
    if slots are left, whatever remains. `kind_of[n]` and `far[n]` describe pool[n];
    unknown kinds never count as the same kind."""
    chosen: list[int] = []
    per_kind: Counter[int] = Counter()

    def take(n: int) -> None:
        chosen.append(n)
        per_kind[kind_of[n]] += kind_of[n] != unknown_kind

    for n in range(len(pool)):
        if len(chosen) < top_n and not far[n] and per_kind[kind_of[n]] < max_per_kind:
            take(n)
    for n in range(len(pool)):
        if len(chosen) < top_n and far[n] and per_kind[kind_of[n]] == 0:
            take(n)
    taken = set(chosen)
    for n in range(len(pool)):
        if len(chosen) < top_n and n not in taken:
            take(n)
    return [pool[n] for n in sorted(chosen)]
