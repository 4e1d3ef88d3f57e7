"""Candidate search: which businesses each business's list is chosen from.

Local candidates are every active business in the same or a near market. Far candidates
are businesses elsewhere of a related kind when one side works remotely; they grow with
the book, so each business keeps its best `far_candidates` by a cheap estimate (see
`Scorer.estimate`). Where they come from is a strategy:

- `ExhaustiveFarSearch` estimates every eligible far business in memory (exact);
- `IndexFarSearch` asks a `VectorSearch` who offers what the business needs and who needs
  what it offers, then estimates those: `StoreVectorSearch` is Neo4j's vector indexes
  (approximate nearest neighbours), `InMemoryVectorSearch` an exact scan of the book.

Each strategy also says which rows a changed business could enter or leave the far
candidates of, so an incremental refresh can find every list a change reaches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from netweave.matching.features import Features
from netweave.matching.geography import Geography
from netweave.matching.kinds import KindTable
from netweave.matching.ranking import top_k
from netweave.matching.scoring import Scorer
from netweave.matching.vectors import cosine

_ROWS_PER_STEP = 64  # rows estimated at once
_COLUMNS_PER_BLOCK = 16_384  # columns whose vectors are gathered at once (2 x 16k x 384 floats = 50 MB)
_FEW_ROWS = 512  # up to this many rows are estimated against the whole book in place
_INDEX_ROWS_PER_STEP = 2048  # rows whose neighbours are asked of a vector index at once
# Neo4j ranks by its own cosine of unquantized vectors; ours differs by < 1e-3. A change
# within this margin of a row's last neighbour counts as reaching it.
_ANN_MARGIN = 0.01


Hits = list[list[tuple[str, float]]]  # per query: (business id, cosine similarity), nearest first


class VectorSearch(Protocol):
    def nearest(self, field: str, queries: np.ndarray, k: int) -> Hits:
        """Per query vector (unit length), up to k businesses whose `field` vector is nearest
        (cosine), with their similarity, nearest first."""
        ...


class StoreVectorSearch:
    """The store's vector indexes (Neo4j's `db.index.vector.queryNodes`)."""

    def __init__(self, nearest: Callable[[str, np.ndarray, int], Hits]):
        self._nearest = nearest

    def nearest(self, field: str, queries: np.ndarray, k: int) -> Hits:
        return self._nearest(field, queries, k)


class InMemoryVectorSearch:
    """An exact scan of the book's own (quantized) vectors."""

    def __init__(self, features: Features, scale: float):
        self.f = features
        self.scale = scale

    def nearest(self, field: str, queries: np.ndarray, k: int) -> Hits:
        f = self.f
        columns = np.flatnonzero(f.active[: f.size] & f.present[field][: f.size])
        if not len(columns):
            return [[] for _ in range(len(queries))]
        similarity = cosine(np.rint(queries * self.scale).astype(np.float32) @ f.vectors[field][columns].T, self.scale)
        chosen, scores, _ = top_k(similarity, np.broadcast_to(columns, similarity.shape), f.key, k)
        return [
            [(f.ids[j], float(score)) for j, score in zip(row, row_scores, strict=True) if j >= 0]
            for row, row_scores in zip(chosen.tolist(), scores.tolist(), strict=True)
        ]


@dataclass
class FarResult:
    """Far candidates of some rows and their floors (the book keeps one for every row)."""

    columns: np.ndarray  # rows x far_candidates, -1 padded
    floor: np.ndarray  # per row: the last candidate's estimate, or -inf when there was room
    needs_floor: np.ndarray  # per row (index search): similarity of its last needs->offers neighbour
    offers_floor: np.ndarray  # per row (index search): similarity of its last offers->needs neighbour

    def take(self, at: np.ndarray | slice) -> FarResult:
        return FarResult(self.columns[at], self.floor[at], self.needs_floor[at], self.offers_floor[at])

    def put(self, at: np.ndarray, other: FarResult) -> None:
        self.columns[at], self.floor[at] = other.columns, other.floor
        self.needs_floor[at], self.offers_floor[at] = other.needs_floor, other.offers_floor


class FarSearch(Protocol):
    def far(self, rows: np.ndarray, on_progress: Callable[[int], None] = ...) -> FarResult: ...

    def reach(self, position: int, state: FarResult, vectors: dict[str, np.ndarray]) -> np.ndarray:
        """Rows (boolean, over the book) whose far candidates a business could enter with
        `vectors` (its vectors before or after a change); `state` holds every row's floors."""
        ...


class _Base:
    def __init__(self, features: Features, kinds: KindTable, geography: Geography, scorer: Scorer, k: int):
        self.f = features
        self.kinds = kinds
        self.geo = geography
        self.scorer = scorer
        self.k = k

    def eligible(self, kind: int, columns: np.ndarray) -> np.ndarray:
        """Of `columns`, the businesses a business of `kind` may meet from afar: active, of a
        related kind, one side remote (the market test is per row, in `_not_near`)."""
        f = self.f
        mask = f.active[columns] & self.kinds.related[kind][f.kind[columns]]
        if not self.kinds.remote[kind]:
            mask &= f.remote[columns]
        return columns[mask]

    def _not_near(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """rows x columns: True where the column is outside the row's area."""
        return ~self.geo.near[self.f.market[rows][:, None], self.f.market[columns][None, :]]

    def _rank(self, rows: np.ndarray, columns: np.ndarray, result: FarResult, at: np.ndarray) -> None:
        """Estimate `columns` for `rows` (result rows `at`) and keep each row's best k."""
        estimate = self.scorer.estimate(rows, columns)
        estimate[~self._not_near(rows, columns)] = -np.inf
        estimate[rows[:, None] == columns[None, :]] = -np.inf
        chosen, _, floor = top_k(estimate, np.broadcast_to(columns, estimate.shape), self.f.key, self.k)
        result.columns[at] = chosen
        result.floor[at] = floor

    def _empty(self, count: int) -> FarResult:
        return FarResult(
            np.full((count, self.k), -1, dtype=np.int64),
            np.full(count, -np.inf, dtype=np.float32),
            np.full(count, -np.inf, dtype=np.float32),
            np.full(count, -np.inf, dtype=np.float32),
        )

    def _may_enter(self, position: int, state: FarResult, vectors: dict[str, np.ndarray]) -> np.ndarray:
        """Rows whose estimate of the business (with `vectors`) reaches their floor."""
        f = self.f
        size = f.size
        rows = np.arange(size)
        kind = int(f.kind[position])
        related = self.kinds.related[f.kind[:size], kind]
        remote = f.remote[:size] | bool(f.remote[position])
        outside = ~self.geo.near[f.market[:size], f.market[position]]
        candidates = np.flatnonzero(f.active[:size] & related & remote & outside & (rows != position))
        reach = np.zeros(size, dtype=bool)
        if not len(candidates):
            return reach
        rule = self.scorer.w.rule * self.kinds.relation_weight[f.kind[candidates], kind]
        estimate = self.scorer.estimate_from(
            rule, f.vectors["needs"][candidates] @ vectors["offers"], f.vectors["offers"][candidates] @ vectors["needs"]
        )
        reach[candidates[estimate >= state.floor[candidates]]] = True
        return reach


class ExhaustiveFarSearch(_Base):
    """Every eligible far business estimated in memory.

    Many rows (a full refresh) go a kind at a time: each block of eligible columns' vectors
    is gathered once and every row of the kind is estimated against it, keeping a running
    best k per row (the best k of a union is the best k of the blocks' best k). A few rows
    (an incremental refresh) are estimated against the whole book in place, which gathers
    nothing. Both compute each estimate with the same exact operations, so a row's far
    candidates do not depend on the path or on the rows ranked with it.
    """

    def far(self, rows: np.ndarray, on_progress: Callable[[int], None] = lambda n: None) -> FarResult:
        if len(rows) <= _FEW_ROWS:
            result = self._far_in_place(rows)
            on_progress(len(rows))
            return result
        return self._far_by_kind(rows, on_progress)

    def _far_in_place(self, rows: np.ndarray) -> FarResult:
        f, w, v, kinds = self.f, self.scorer.w, self.f.vectors, self.kinds
        size = f.size
        result = self._empty(len(rows))
        everyone = np.arange(size)
        for start in range(0, len(rows), _ROWS_PER_STEP):
            chunk = rows[start : start + _ROWS_PER_STEP]
            rule = w.rule * kinds.relation_weight[f.kind[chunk][:, None], f.kind[:size][None, :]]
            estimate = self.scorer.estimate_from(
                rule, v["needs"][chunk] @ v["offers"][:size].T, v["offers"][chunk] @ v["needs"][:size].T
            )
            eligible = f.active[:size][None, :] & kinds.related[f.kind[chunk][:, None], f.kind[:size][None, :]]
            eligible &= kinds.remote[f.kind[chunk]][:, None] | f.remote[:size][None, :]
            eligible &= self._not_near(chunk, everyone)
            eligible &= chunk[:, None] != everyone[None, :]
            estimate[~eligible] = -np.inf
            chosen, _, floor = top_k(estimate, np.broadcast_to(everyone, estimate.shape), f.key, self.k)
            result.columns[start : start + len(chunk)] = chosen
            result.floor[start : start + len(chunk)] = floor
        return result

    def _far_by_kind(self, rows: np.ndarray, on_progress: Callable[[int], None]) -> FarResult:
        result = self._empty(len(rows))
        f, w, v = self.f, self.scorer.w, self.f.vectors
        everyone = f.active_positions()
        kinds = f.kind[rows]
        for kind in np.unique(kinds).tolist():
            at = np.flatnonzero(kinds == kind)
            eligible = self.eligible(kind, everyone)
            if not len(eligible):
                on_progress(len(at))
                continue
            kind_rows = rows[at]
            best = np.full((len(at), self.k), -1, dtype=np.int64)
            best_scores = np.full((len(at), self.k), -np.inf, dtype=np.float32)
            floor = np.full(len(at), -np.inf, dtype=np.float32)
            for start in range(0, len(eligible), _COLUMNS_PER_BLOCK):
                columns = eligible[start : start + _COLUMNS_PER_BLOCK]
                offers_t = np.ascontiguousarray(v["offers"][columns].T)
                needs_t = np.ascontiguousarray(v["needs"][columns].T)
                rule = w.rule * self.kinds.relation_weight[kind, f.kind[columns]]
                for first in range(0, len(at), _ROWS_PER_STEP):
                    part = slice(first, first + _ROWS_PER_STEP)
                    chunk = kind_rows[part]
                    estimate = self.scorer.estimate_from(
                        np.broadcast_to(rule, (len(chunk), len(columns))).copy(),
                        v["needs"][chunk] @ offers_t,
                        v["offers"][chunk] @ needs_t,
                    )
                    estimate[~self._not_near(chunk, columns)] = -np.inf
                    estimate[chunk[:, None] == columns[None, :]] = -np.inf
                    found, found_scores, _ = top_k(estimate, np.broadcast_to(columns, estimate.shape), f.key, self.k)
                    merged = np.concatenate([best_scores[part], found_scores], axis=1)
                    candidates = np.concatenate([best[part], found], axis=1)
                    best[part], best_scores[part], floor[part] = top_k(merged, candidates, f.key, self.k)
            result.columns[at] = best
            result.floor[at] = floor
            on_progress(len(at))
        return result

    def reach(self, position: int, state: FarResult, vectors: dict[str, np.ndarray]) -> np.ndarray:
        return self._may_enter(position, state, vectors)


class IndexFarSearch(_Base):
    def __init__(
        self,
        features: Features,
        kinds: KindTable,
        geography: Geography,
        scorer: Scorer,
        k: int,
        search: VectorSearch,
        neighbours: int,
    ):
        super().__init__(features, kinds, geography, scorer, k)
        self.search = search
        self.neighbours = neighbours

    def far(self, rows: np.ndarray, on_progress: Callable[[int], None] = lambda n: None) -> FarResult:
        # A chunk of rows at a time: the index answers ~100 hits a row and field, and held for
        # a whole book at once (a full refresh) they took gigabytes. Each row's result is its own.
        result = self._empty(len(rows))
        for start in range(0, len(rows), _INDEX_ROWS_PER_STEP):
            chunk = rows[start : start + _INDEX_ROWS_PER_STEP]
            self._far_chunk(chunk, result, start)
            on_progress(len(chunk))
        return result

    def _far_chunk(self, rows: np.ndarray, result: FarResult, offset: int) -> None:
        f, scale = self.f, self.scorer.scale
        proposed: list[set[int]] = [set() for _ in rows]
        # (indexed field, query field): who offers what the row needs, who needs what it offers
        for indexed, query, floor in (
            ("offers", "needs", result.needs_floor),
            ("needs", "offers", result.offers_floor),
        ):
            asking = np.flatnonzero(f.present[query][rows])
            if not len(asking):
                continue
            queries = f.vectors[query][rows[asking]] / scale
            found = self.search.nearest(indexed, queries, self.neighbours)
            for n, hits in zip(asking.tolist(), found, strict=True):
                proposed[n].update(f.index[i] for i, _ in hits if i in f.index)
                if len(hits) >= self.neighbours:  # a newcomer enters only by beating the k-th
                    floor[offset + n] = min(similarity for _, similarity in hits)
        for n, row in enumerate(rows.tolist()):
            if not proposed[n]:
                continue
            columns = self.eligible(int(f.kind[row]), np.fromiter(sorted(proposed[n]), dtype=np.int64))
            if len(columns):
                self._rank(np.array([row]), columns, result, np.array([offset + n]))

    def reach(self, position: int, state: FarResult, vectors: dict[str, np.ndarray]) -> np.ndarray:
        """Rows whose nearest neighbours the business could join (and so push another out).
        A row's far candidates come only from its neighbours, so no other row can take it in."""
        f, scale = self.f, self.scorer.scale
        size = f.size
        active = f.active[:size]
        needs = cosine(f.vectors["needs"][:size] @ vectors["offers"], scale)
        offers = cosine(f.vectors["offers"][:size] @ vectors["needs"], scale)
        reach = active & f.present["needs"][:size] & (needs >= state.needs_floor[:size] - _ANN_MARGIN)
        reach |= active & (offers >= state.offers_floor[:size] - _ANN_MARGIN)
        return reach
