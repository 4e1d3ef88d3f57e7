"""The loaded book: everything needed to rank any business's list, kept current change by change.

A list is a function of the book: for each active business, its pool is the best
`pool_size` candidates (local ones and its far candidates) by score, ties broken by key,
and its list the `top_n` of its pool chosen with variety. `rank(rows)` computes rows from
scratch; a full refresh ranks every row, an incremental one only the rows a change can
reach. `take_in` applies changed businesses and returns those rows:

- the changed businesses themselves;
- every row whose pool or far candidates held one of them (it may leave, or its score move);
- every row one of them could now enter: its new score reaches the row's pool floor (the
  last pool score, or -inf while there is room), or its estimate reaches the row's far floor;
- rows whose shared-partner bonus or learned affinity depends on one of them;
- every row of a market whose set of near markets changed.

Because every row is computed bit-for-bit the same alone or in a block (see
`netweave.matching.vectors` and `ranking`), refreshing those rows gives exactly what a
full refresh would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from graph.records import EMBEDDING_FIELDS, Feedback, StoredBusiness, Tie
from netweave.matching.eligibility import Eligibility, PairSignals, pair_signals
from netweave.matching.features import Features, coords_of, has_text
from netweave.matching.geography import Geography, market_of
from netweave.matching.kinds import KindGuess, KindTable, guess_kinds, named_kinds
from netweave.matching.ranking import choose_with_variety, top_k
from netweave.matching.rules import Rules
from netweave.matching.scoring import Scorer
from netweave.matching.search import (
    ExhaustiveFarSearch,
    FarResult,
    FarSearch,
    IndexFarSearch,
    InMemoryVectorSearch,
    VectorSearch,
)
from netweave.matching.settings import MatchSettings
from netweave.matching.vectors import quantize, scale_for

Ranked = list[tuple[int, float]]  # (position, score) best first


@dataclass
class BusinessUpdate:
    """What the store says of one business now (`business` None: no longer stored)."""

    business_id: str
    business: StoredBusiness | None
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # field -> unit vector (absent: no text)
    ties: Sequence[Tie] = ()
    blocked: set[tuple[str, str]] = field(default_factory=set)
    feedback: Sequence[Feedback] = ()


class Book:
    def __init__(
        self,
        rules: Rules,
        settings: MatchSettings,
        prototypes: np.ndarray,
        vector_search: VectorSearch | str | None = None,
    ):
        """`prototypes` are the kinds' unit vectors (their dimensions are the model's);
        `vector_search` proposes far candidates: a VectorSearch, "memory" for an exact scan of
        the book, or None to estimate every eligible business."""
        self.rules = rules
        self.settings = settings
        self.weights = settings.weights
        dimensions = prototypes.shape[1]
        self.scale = scale_for(dimensions)
        self.prototypes = quantize(prototypes, self.scale)
        self.kinds = KindTable(rules)
        self.f = Features(dimensions)
        self.geo = Geography(settings.max_km)
        self.elig = Eligibility(self.weights)
        self.scorer = Scorer(self.f, self.kinds, self.geo, self.elig, settings, self.scale)
        k = settings.far_candidates
        if vector_search is None:
            self.far_search: FarSearch = ExhaustiveFarSearch(self.f, self.kinds, self.geo, self.scorer, k)
        else:
            search = InMemoryVectorSearch(self.f, self.scale) if vector_search == "memory" else vector_search
            self.far_search = IndexFarSearch(
                self.f, self.kinds, self.geo, self.scorer, k, search, settings.index_neighbours
            )
        self.now = 0.0  # POSIX time the lists are as of
        self._state_capacity = 0
        self._grow_state()
        # id -> positions whose signals (ties, blocks, verdicts) name that business
        self._mentions: dict[str, set[int]] = defaultdict(set)

    # Row state: what each row's last ranking saw, to tell which rows a change reaches.
    def _grow_state(self) -> None:
        capacity = self.f.capacity
        if capacity == self._state_capacity:
            return
        k, pool = self.settings.far_candidates, self.settings.pool_size

        def grown(old: np.ndarray | None, shape: tuple[int, ...], fill: float, dtype: type) -> np.ndarray:
            fresh = np.full(shape, fill, dtype=dtype)
            if old is not None:
                fresh[: len(old)] = old
            return fresh

        first = self._state_capacity == 0
        self.far = FarResult(
            grown(None if first else self.far.columns, (capacity, k), -1, np.int32),
            grown(None if first else self.far.floor, (capacity,), -np.inf, np.float32),
            grown(None if first else self.far.needs_floor, (capacity,), -np.inf, np.float32),
            grown(None if first else self.far.offers_floor, (capacity,), -np.inf, np.float32),
        )
        self.pool = grown(None if first else self.pool, (capacity, pool), -1, np.int32)
        self.pool_floor = grown(None if first else self.pool_floor, (capacity,), -np.inf, np.float32)
        # Whether a row's far candidates are still what a fresh search would find.
        self.far_valid = grown(None if first else self.far_valid, (capacity,), False, bool)
        self._state_capacity = capacity

    # Loading and changes
    def load(
        self,
        businesses: Sequence[StoredBusiness],
        vector_batches: Callable[[str], Iterable[tuple[list[str], np.ndarray]]],
        ties: Sequence[Tie],
        blocked: set[tuple[str, str]],
        feedback: Sequence[Feedback],
        now: float,
    ) -> None:
        """Take in a whole book before the first `rank`: its active businesses, their vectors
        (`vector_batches(field)` gives ids and unit vectors a batch at a time, so no second copy
        of the book's vectors is ever in memory), and every tie, blocked pair and piece of feedback."""
        self.now = now
        businesses = [b for b in businesses if b.archived_at is None]
        self.f.reserve(len(businesses))
        self._grow_state()
        positions = self._place(businesses)
        for name in EMBEDDING_FIELDS:
            for ids, vectors in vector_batches(name):
                known = [(n, self.f.index[i]) for n, i in enumerate(ids) if i in self.f.index]
                self._set_vectors(name, [p for _, p in known], vectors, [n for n, _ in known])
        self._set_kinds(positions)
        # Signals only for the businesses the graph says something about (most have none).
        loaded = {b.id: b for b in businesses}
        ties_of: dict[str, list[Tie]] = defaultdict(list)
        blocked_of: dict[str, set[tuple[str, str]]] = defaultdict(set)
        feedback_of: dict[str, list[Feedback]] = defaultdict(list)
        for tie in ties:
            for i in (tie.a, tie.b):
                if i in loaded:
                    ties_of[i].append(tie)
        for pair in blocked:
            for i in pair:
                if i in loaded:
                    blocked_of[i].add(pair)
        for item in feedback:
            for i in {item.a, item.b}:
                if i in loaded:
                    feedback_of[i].append(item)
        for business_id in sorted({*ties_of, *blocked_of, *feedback_of}):
            update = BusinessUpdate(
                business_id, loaded[business_id], {}, ties_of[business_id], blocked_of[business_id],
                feedback_of[business_id],
            )  # fmt: skip
            self._apply_signals(update)
        self.geo.update()

    def take_in(self, updates: Sequence[BusinessUpdate], now: float) -> tuple[set[int], set[int]]:
        """Apply changed businesses (and the passing of time up to `now`).

        Returns (rows to rank, positions that left the book and need their list cleared).
        """
        f = self.f
        touched_ids = [u.business_id for u in updates]
        before = {i: self._snapshot(f.index[i]) for i in touched_ids if i in f.index}
        # By id: updates carry numpy vectors, which do not compare as values.
        staying_ids = {u.business_id for u in updates if u.business is not None and u.business.archived_at is None}
        staying = [u for u in updates if u.business_id in staying_ids]
        leaving = [u for u in updates if u.business_id not in staying_ids]
        left: set[int] = set()
        for update in leaving:
            position = f.index.get(update.business_id)
            if position is not None and f.active[position]:
                self._deactivate(position)
                left.add(position)
        self._apply_businesses(staying)
        for update in staying:
            self._apply_signals(update)
        moved_markets = self.geo.update()

        # Signals that name a touched business are resolved again (it may have come or gone).
        # Those whose learned affinity depends on it reach further when its kind or presence
        # changed: their scores with a whole kind moved.
        touched_positions = {f.index[i] for i in touched_ids if i in f.index}
        reaching = set(touched_positions)
        for business_id in set(touched_ids):
            mentioned = {p for p in self._mentions.get(business_id, ()) if f.active[p] and p not in touched_positions}
            for position in mentioned:
                self._resolve(position)
            old = before.get(business_id)
            position = f.index.get(business_id)
            moved = (
                old is None
                or position is None
                or old["kind"] != int(f.kind[position])
                or old["active"] != bool(f.active[position])
            )
            if moved:
                reaching |= {p for p in mentioned if business_id in self.elig.signals[p].verdicts}

        # Time moves on: pairs whose 'bad timing' pause ends (or, going back, begins) in between.
        rows: set[int] = self.elig.expiring_between(self.now, now) if now != self.now else set()
        self.now = now
        positions = np.fromiter(sorted(reaching), dtype=np.int64, count=len(reaching))
        size = f.size
        # Far candidates change only for the touched businesses, rows that held one of them, rows
        # one of them could enter (before or after the change), and rows of moved markets.
        far_stale = np.zeros(size, dtype=bool)
        far_stale[sorted(touched_positions)] = True
        if len(positions):
            far_stale |= np.isin(self.far.columns[:size], positions).any(axis=1)
            rows.update(np.flatnonzero(np.isin(self.pool[:size], positions).any(axis=1)).tolist())
        for position in positions.tolist():
            old = before.get(f.ids[position])
            if old is not None:
                rows |= old["partners"]
                if old["active"]:
                    far_stale |= self.far_search.reach(position, self.far, old["vectors"])
            if not f.active[position]:
                continue
            rows.add(position)
            rows |= self.elig.partners.get(position, set())
            rows |= self._entering(position, far_stale)
        for market in moved_markets:
            far_stale |= f.active[:size] & (f.market[:size] == market)
        self.far_valid[:size] &= ~far_stale
        rows.update(np.flatnonzero(far_stale).tolist())
        rows = {r for r in rows if f.active[r]}
        return rows, left

    def _snapshot(self, position: int) -> dict:
        f = self.f
        return {
            "vectors": {name: f.vectors[name][position].copy() for name in EMBEDDING_FIELDS},
            "partners": set(self.elig.partners.get(position, set())),
            "kind": int(f.kind[position]),
            "active": bool(f.active[position]),
        }

    def _entering(self, position: int, far_stale: np.ndarray) -> set[int]:
        """Rows the business (as it is now) could enter by score into a pool; those it could
        enter by estimate into far candidates are marked in `far_stale`."""
        f = self.f
        size = f.size
        rows = np.flatnonzero(f.active[:size] & self.geo.near[f.market[:size], f.market[position]])
        entering: set[int] = set()
        if len(rows):
            scores = self.scorer.score(rows, np.array([position]), self.now)[:, 0]
            entering.update(rows[np.isfinite(scores) & (scores >= self.pool_floor[rows])].tolist())
        current = {name: f.vectors[name][position] for name in EMBEDDING_FIELDS}
        far_stale |= self.far_search.reach(position, self.far, current)
        return entering

    def _deactivate(self, position: int) -> None:
        f = self.f
        f.active[position] = False
        self.geo.forget(position, int(f.market[position]))
        self._forget_signals(position)

    def _apply_businesses(self, updates: Sequence[BusinessUpdate]) -> None:
        """Features of active businesses: record, place, vectors, kind."""
        businesses = [u.business for u in updates if u.business is not None]
        positions = self._place(businesses)
        for name in EMBEDDING_FIELDS:
            self.f.vectors[name][positions] = 0.0
            given = [(p, u.vectors[name]) for p, u in zip(positions, updates, strict=True) if name in u.vectors]
            if given:
                self._set_vectors(name, [p for p, _ in given], np.stack([v for _, v in given]))
        self._set_kinds(positions)

    def _place(self, businesses: Sequence[StoredBusiness]) -> list[int]:
        """Record, owner, opt-out and place of each business; its texts count as present until
        `_set_vectors` says which have a vector."""
        f = self.f
        positions = []
        for business in businesses:
            position = f.position(business.id)
            if f.capacity != self._state_capacity:
                self._grow_state()
            if f.active[position]:
                self.geo.forget(position, int(f.market[position]))
            positions.append(position)
            f.businesses[position] = business
            f.active[position] = True
            f.owner[position] = f.owner_number(business.record.salesperson_id)
            f.opted_out[position] = business.opted_out
            f.market[position] = self.geo.market(market_of(business.record.place))
            f.coords[position] = coords_of(business)
            self.geo.place(position, int(f.market[position]), f.coords[position])
            for name in EMBEDDING_FIELDS:
                f.present[name][position] = False
        return positions

    def _set_vectors(
        self, name: str, positions: Sequence[int], vectors: np.ndarray, rows: Sequence[int] | None = None
    ) -> None:
        """Quantize and keep `vectors` (or its `rows`) for the businesses at `positions`, a
        slice at a time; a business whose text is empty keeps no vector."""
        f = self.f
        for start in range(0, len(positions), 8192):
            at = list(positions[start : start + 8192])
            part = vectors[start : start + 8192] if rows is None else vectors[list(rows[start : start + 8192])]
            businesses = [f.businesses[p] for p in at]
            f.present[name][at] = [b is not None and has_text(b, name) for b in businesses]
            f.set_vectors(name, at, quantize(part, self.scale))

    def _set_kinds(self, positions: Sequence[int]) -> None:
        f = self.f
        for start in range(0, len(positions), 8192):
            part = list(positions[start : start + 8192])
            for position, guess in zip(part, self._guess(part), strict=True):
                f.guesses[position] = guess
                f.kind[position] = self.kinds.number(guess)
                f.guard_kind[position], f.guard_kind2[position] = self.kinds.suspected_numbers(guess)
                f.confidence[position] = guess.confidence if guess.kind else 0.0
                f.guard_root[position] = np.sqrt(guess.confidence if guess.suspected else 0.0)
                f.guard_root2[position] = np.sqrt(guess.runner_up_confidence)
                f.remote[position] = self.kinds.remote[f.kind[position]]

    def _guess(self, positions: list[int]) -> list[KindGuess]:
        f = self.f
        return guess_kinds(
            [named_kinds(f.businesses[p].record) for p in positions],
            f.vectors["offers"][positions],
            self.prototypes,
            self.scale,
            self.rules,
            self.weights,
        )

    def _apply_signals(self, update: BusinessUpdate) -> None:
        business = update.business
        assert business is not None
        position = self.f.index[business.id]
        self._forget_signals(position)
        signals = pair_signals(business.id, update.ties, update.blocked, update.feedback, self.weights)
        self.elig.signals[position] = signals
        for other in {*signals.excluded_until, *signals.partners, *signals.verdicts}:
            self._mentions[other].add(position)
        self._resolve(position)

    def _forget_signals(self, position: int) -> None:
        old = self.elig.signals.get(position)
        if old is not None:
            for other in {*old.excluded_until, *old.partners, *old.verdicts}:
                self._mentions[other].discard(position)
        self.elig.forget(position)

    def _resolve(self, position: int) -> None:
        """Resolve a business's signals against the book as it is now: who is in it, of which kind."""
        f = self.f
        active = _ActiveIndex(f)

        def kind_of(other: str) -> int | None:
            p = active.get(other)
            return None if p is None else int(f.kind[p])

        self.elig.set(
            position, self.elig.signals.get(position, PairSignals()), active.get, kind_of, self.kinds.unknown + 1
        )

    # Ranking
    def _keep_far(self, rows: np.ndarray, far: FarResult) -> None:
        self.far.put(rows, far)
        self.far_valid[rows] = True

    def far_candidates(self, rows: np.ndarray, on_progress: Callable[[int], None] = lambda n: None) -> FarResult:
        """Far candidates of `rows` (computing them for many rows at once is cheaper)."""
        return self.far_search.far(np.asarray(rows, dtype=np.int64), on_progress)

    def rank(self, rows: Iterable[int], far: FarResult | None = None) -> dict[int, Ranked]:
        """Compute the lists of `rows` from scratch (and remember what each row saw); `far`
        may give their far candidates, as `far_candidates(rows)` computed them."""
        f, settings, w = self.f, self.settings, self.weights
        given = np.asarray(list(rows), dtype=np.int64)
        rows = np.array(sorted({int(r) for r in given.tolist() if f.active[r]}), dtype=np.int64)
        result: dict[int, Ranked] = {}
        if not len(rows):
            return result
        if far is not None:  # align the given far candidates with the sorted rows
            order = {int(r): n for n, r in enumerate(given.tolist())}
            at = np.array([order[int(r)] for r in rows.tolist()], dtype=np.int64)
            self._keep_far(rows, far.take(at))
        elif len(stale := rows[~self.far_valid[rows]]):  # only rows whose far candidates may have changed
            self._keep_far(stale, self.far_search.far(stale))
        far = self.far.take(rows)
        far_of = {int(r): n for n, r in enumerate(rows.tolist())}
        size = f.size
        active = f.active[:size]
        markets = f.market[rows]
        for market in np.unique(markets).tolist():
            in_market = rows[markets == market]
            local = (
                np.flatnonzero(active & self.geo.near[market, f.market[:size]])
                if market >= 0
                else np.zeros(0, dtype=np.int64)
            )
            step = max(16, settings.block_pairs // max(len(local), 1))
            for start in range(0, len(in_market), step):
                part = in_market[start : start + step]
                far_part = far.columns[[far_of[i] for i in part.tolist()]]
                scores = np.concatenate(
                    [self.scorer.score(part, local, self.now), self.scorer.score_candidates(part, far_part, self.now)],
                    axis=1,
                )
                columns = np.concatenate([np.broadcast_to(local, (len(part), len(local))), far_part], axis=1)
                pool, pool_scores, floor = top_k(scores, columns, f.key, settings.pool_size)
                self.pool[part] = pool
                self.pool_floor[part] = floor
                # Entries come first in a pool row, -1 padding after them.
                pool_far = ~self.geo.near[market, f.market[pool]] if market >= 0 else np.ones(pool.shape, dtype=bool)
                pool_kinds = f.kind[pool]
                for r, i in enumerate(part.tolist()):
                    entries = [(j, s) for j, s in zip(pool[r].tolist(), pool_scores[r].tolist(), strict=True) if j >= 0]
                    chosen = choose_with_variety(
                        entries,
                        pool_kinds[r, : len(entries)].tolist(),
                        pool_far[r, : len(entries)].tolist(),
                        self.kinds.unknown,
                        settings.top_n,
                        w.max_per_kind,
                    )
                    ranked = sorted(((j, round(s, 4)) for j, s in chosen), key=lambda item: (-item[1], f.ids[item[0]]))
                    result[i] = ranked
        return result

    def active_rows(self) -> np.ndarray:
        return self.f.active_positions()


class _ActiveIndex:
    """`features.index` restricted to active businesses, without copying it."""

    def __init__(self, features: Features):
        self.f = features

    def get(self, business_id: str) -> int | None:
        position = self.f.index.get(business_id)
        return position if position is not None and self.f.active[position] else None

    def __contains__(self, business_id: str) -> bool:
        return self.get(business_id) is not None

    def __getitem__(self, business_id: str) -> int:
        position = self.get(business_id)
        if position is None:
            raise KeyError(business_id)
        return position
