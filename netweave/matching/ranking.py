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
    pool: Sequence[tuple[int, float]], kind_of: Sequence[int], unknown_kind: int, top_n: int, decay: float
) -> list[tuple[int, float]]:
    """The top_n of a pool (best first, as `top_k` orders it) chosen one at a time by score x
    decay ** (businesses of the same kind already chosen): a florist hears of a planner, a
    venue and a photographer rather than three planners, unless the third planner is clearly
    better. `kind_of[n]` is the kind of pool[n]; unknown kinds never count as the same kind."""
    if len(set(kind_of)) == len(kind_of) or decay == 1.0:
        return list(pool[:top_n])  # nothing to decay: the best in pool order
    left = list(range(len(pool)))
    chosen: list[int] = []
    per_kind: Counter[int] = Counter()
    while left and len(chosen) < top_n:
        pick, best = left[0], -1.0
        for n in left:  # the first of equals wins: pool order
            value = pool[n][1] * decay ** per_kind[kind_of[n]]
            if value > best:
                pick, best = n, value
        left.remove(pick)
        per_kind[kind_of[pick]] += kind_of[pick] != unknown_kind
        chosen.append(pick)
    return [pool[n] for n in chosen]
