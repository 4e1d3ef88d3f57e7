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

_ROWS_PER_STEP = 64  # bounds the estimate's memory: 64 x (eligible businesses) floats
# Neo4j ranks by its own cosine of unquantized vectors; ours differs by < 1e-3. A change
# within this margin of a row's last neighbour counts as reaching it.
_ANN_MARGIN = 0.01


class VectorSearch(Protocol):
    def nearest(self, field: str, queries: np.ndarray, k: int) -> list[list[str]]:
        """Per query vector (unit length), ids of up to k businesses whose `field` vector is
        nearest (cosine), nearest first."""
        ...


class StoreVectorSearch:
    """The store's vector indexes (Neo4j's `db.index.vector.queryNodes`)."""

    def __init__(self, nearest: Callable[[str, np.ndarray, int], list[list[str]]]):
        self._nearest = nearest

    def nearest(self, field: str, queries: np.ndarray, k: int) -> list[list[str]]:
        return self._nearest(field, queries, k)


class InMemoryVectorSearch:
    """An exact scan of the book's own (quantized) vectors."""

    def __init__(self, features: Features, scale: float):
        self.f = features
        self.scale = scale

    def nearest(self, field: str, queries: np.ndarray, k: int) -> list[list[str]]:
        f = self.f
        columns = np.flatnonzero(f.active[: f.size] & f.present[field][: f.size])
        if not len(columns):
            return [[] for _ in range(len(queries))]
        similarity = cosine(np.rint(queries * self.scale).astype(np.float32) @ f.vectors[field][columns].T, self.scale)
        chosen, _, _ = top_k(similarity, np.broadcast_to(columns, similarity.shape), f.key, k)
        return [[f.ids[j] for j in row if j >= 0] for row in chosen.tolist()]


@dataclass
class FarResult:
    columns: np.ndarray  # rows x far_candidates, -1 padded
    floor: np.ndarray  # per row: the last candidate's estimate, or -inf when there was room
    needs_floor: np.ndarray  # per row (index search): similarity of its last needs->offers neighbour
    offers_floor: np.ndarray  # per row (index search): similarity of its last offers->needs neighbour


class FarSearch(Protocol):
    def far(self, rows: np.ndarray) -> FarResult: ...

    def reach(self, position: int, state: FarState, vectors: dict[str, np.ndarray]) -> np.ndarray:
        """Rows (boolean, over the book) whose far candidates a business could enter with
        `vectors` (its vectors before or after a change); `state` holds every row's floors."""
        ...


@dataclass
class FarState:
    columns: np.ndarray
    floor: np.ndarray
    needs_floor: np.ndarray
    offers_floor: np.ndarray


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

    def _may_enter(self, position: int, state: FarState, vectors: dict[str, np.ndarray]) -> np.ndarray:
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
        w, scale = self.scorer.w, self.scorer.scale
        rule = w.rule * self.kinds.relation_weight[f.kind[candidates], kind]
        needs = cosine(f.vectors["needs"][candidates] @ vectors["offers"], scale)
        offers = cosine(f.vectors["offers"][candidates] @ vectors["needs"], scale)
        estimate = rule
        estimate += w.need * needs
        estimate += w.client * offers
        reach[candidates[estimate >= state.floor[candidates]]] = True
        return reach


class ExhaustiveFarSearch(_Base):
    def far(self, rows: np.ndarray) -> FarResult:
        result = self._empty(len(rows))
        f = self.f
        everyone = f.active_positions()
        kinds = f.kind[rows]
        for kind in np.unique(kinds).tolist():
            eligible = self.eligible(kind, everyone)
            if not len(eligible):
                continue
            at = np.flatnonzero(kinds == kind)
            for start in range(0, len(at), _ROWS_PER_STEP):
                part = at[start : start + _ROWS_PER_STEP]
                self._rank(rows[part], eligible, result, part)
        return result

    def reach(self, position: int, state: FarState, vectors: dict[str, np.ndarray]) -> np.ndarray:
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

    def far(self, rows: np.ndarray) -> FarResult:
        f, scale = self.f, self.scorer.scale
        result = self._empty(len(rows))
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
            for n, ids in zip(asking.tolist(), found, strict=True):
                positions = [f.index[i] for i in ids if i in f.index]
                proposed[n].update(positions)
                if len(ids) >= self.neighbours and positions:
                    similarity = cosine(f.vectors[indexed][positions] @ f.vectors[query][rows[n]], scale)
                    floor[n] = similarity.min()
        for n, row in enumerate(rows.tolist()):
            if not proposed[n]:
                continue
            columns = self.eligible(int(f.kind[row]), np.fromiter(sorted(proposed[n]), dtype=np.int64))
            if len(columns):
                self._rank(np.array([row]), columns, result, np.array([n]))
        return result

    def reach(self, position: int, state: FarState, vectors: dict[str, np.ndarray]) -> np.ndarray:
        """Rows whose nearest neighbours the business could join (and so push another out)."""
        f, scale = self.f, self.scorer.scale
        size = f.size
        active = f.active[:size]
        needs = cosine(f.vectors["needs"][:size] @ vectors["offers"], scale)
        offers = cosine(f.vectors["offers"][:size] @ vectors["needs"], scale)
        reach = active & f.present["needs"][:size] & (needs >= state.needs_floor[:size] - _ANN_MARGIN)
        reach |= active & (offers >= state.offers_floor[:size] - _ANN_MARGIN)
        return reach | self._may_enter(position, state, vectors)
