"""Scoring introductions: embeddings + complementarity rules + geography + the graph.

For businesses a and b, each direction gets a benefit (what a gains from meeting b):

    benefit(a<-b) = W_RULE * rule(kind a, kind b)            rules.yaml pair or sphere weight
                  + W_NEED * fit(needs a . offers b)         a gets what it needs (embeddings)
                  + W_CLIENT * fit(needs b . offers a)       a gains b as a client
                  + W_AUDIENCE * fit(customers a . customers b)

and the pair scores the mean of both directions, scaled down when one side gains much less
(`mutual`), times geography and learned feedback factors, plus a bonus per shared partner,
minus a look-alike penalty when the two describe the same offer. Competitors (same or
competing kind in one market, or near-identical offers), existing ties, opted-out pairs
and customers, and dismissed pairs are never suggested. Weights are in `Weights`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import torch

from graph import StoredBusiness, Tie, TieKind
from graph.records import EMBEDDING_FIELDS, DismissReason, Feedback, FeedbackKind, InferredCategory
from netweave.matching.rules import Rules


@dataclass(frozen=True)
class Weights:
    rule: float = 0.40  # the four benefit weights add up to 1, so scores stay within 0..1
    need: float = 0.30
    client: float = 0.15
    audience: float = 0.15
    fit_floor: float = 0.15  # cosine at which a fit starts to count
    fit_span: float = 0.45  # cosine above the floor that counts as a perfect fit
    lookalike_from: float = 0.62  # offers this similar start to look like competitors
    lookalike_competitor: float = 0.80  # and this similar are treated as competitors
    lookalike_penalty: float = 0.35
    shared_partner_bonus: float = 0.05  # per shared partner, at most two
    nearby_factor: float = 0.9  # different market but within max_km
    remote_factor: float = 0.85  # far apart, one side works remotely
    min_score: float = 0.15
    infer_min_confidence: float = 0.25
    infer_temperature: float = 0.04
    feedback_prior: float = 2.0  # pseudo-counts pulling learned factors to 1.0
    bad_timing_days: int = 90
    variety_decay: float = 0.85  # each suggestion of a kind already in the list counts this much less


@dataclass
class MatchSettings:
    top_n: int = 5
    max_km: float = 60.0
    weights: Weights = field(default_factory=Weights)


@dataclass(frozen=True)
class KindGuess:
    kind: str | None
    confidence: float
    source: str  # "given", "inferred" or "none"


def _fit(similarity: np.ndarray, w: Weights) -> np.ndarray:
    """Rescale cosine similarities to 0..1 in place (the matrix is a fresh product)."""
    similarity -= w.fit_floor
    similarity *= 1 / w.fit_span
    return np.clip(similarity, 0.0, 1.0, out=similarity)


def _haversine_matrix(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Distances in km between every pair; NaN (never <= anything) where coordinates are missing."""
    p1, p2 = np.radians(lat1)[:, None], np.radians(lat2)[None, :]
    dp = p2 - p1
    dl = np.radians(lon2)[None, :] - np.radians(lon1)[:, None]
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


FAR_CANDIDATES = 40  # far candidates per business scored in full
BLOCK_PAIRS = 1_000_000  # pairs scored at once: scoring holds a dozen float32 matrices of this size (~50 MB)
INDEX_NEIGHBOURS = 100  # neighbours asked of a vector index per query, before keeping the far ones

# (indexed field, query vectors, k) -> per query, ids of the k businesses whose vector is nearest
NeighbourSearch = Callable[[str, np.ndarray, int], list[list[str]]]


class MatchData:
    """Everything scoring needs, as arrays indexed by business position."""

    def __init__(
        self,
        businesses: Sequence[StoredBusiness],
        load_vectors: Callable[[str], tuple[list[str], np.ndarray]],
        rules: Rules,
        prototype_vectors: np.ndarray,
        ties: Sequence[Tie],
        blocked_pairs: set[tuple[str, str]],
        feedback: Sequence[Feedback],
        settings: MatchSettings,
        now: datetime,
        neighbours: NeighbourSearch | None = None,
    ):
        self.businesses = list(businesses)
        self.neighbours = neighbours
        self.rules = rules
        self.settings = settings
        self.prototypes = prototype_vectors
        self.index = {b.id: i for i, b in enumerate(self.businesses)}
        n = len(self.businesses)
        dims = prototype_vectors.shape[1]
        self.present = {name: np.zeros(n, dtype=bool) for name in EMBEDDING_FIELDS}
        self.matrix = {name: np.zeros((n, dims), dtype=np.float32) for name in EMBEDDING_FIELDS}
        for name in EMBEDDING_FIELDS:  # one field at a time, so only one loaded copy is alive
            self._set_vectors(name, *load_vectors(name))

        self.kind_names = list(rules.kinds)
        self.kind_index = {k: i for i, k in enumerate(self.kind_names)}
        none = len(self.kind_names)  # the "unknown kind" slot
        self.guesses: list[KindGuess] = [KindGuess(None, 0.0, "none")] * n
        self.kind_of = np.full(n, none)
        self.kind_confidence = np.zeros(n, dtype=np.float32)
        self._guess_kinds(list(range(n)))

        k = none + 1
        self.relation_weight = np.zeros((k, k), dtype=np.float32)
        self.competing = np.zeros((k, k), dtype=bool)
        self.remote_kind = np.zeros(k, dtype=bool)
        for a, name_a in enumerate(self.kind_names):
            self.remote_kind[a] = rules.remote(name_a)
            for b, name_b in enumerate(self.kind_names):
                relation = rules.relation(name_a, name_b)
                self.relation_weight[a, b] = relation.weight if relation else 0.0
                self.competing[a, b] = rules.competitors(name_a, name_b)

        self.market = [self._market(b) for b in self.businesses]
        self.coords = [self._coords(b) for b in self.businesses]
        market_ids = {m: n for n, m in enumerate(sorted({m for m in self.market if m is not None}))}
        self.market_ids = market_ids
        self.market_id = np.array([market_ids.get(m, -1) for m in self.market])
        # Indexed by market id; the extra last row and column stand for "market unknown" (id -1).
        self.market_km = self._market_distances(len(market_ids))
        self.near = (self.market_km <= settings.max_km) | np.eye(len(market_ids) + 1, dtype=bool)
        self.near[-1, -1] = False
        self.remote_business = self.remote_kind[self.kind_of]
        self.opted_out = np.array([b.record.opted_out for b in self.businesses], dtype=bool)
        self.markets: dict[str | None, list[int]] = defaultdict(list)
        for i, market in enumerate(self.market):
            self.markets[market].append(i)
        self.set_graph_signals(ties, blocked_pairs, feedback, now)

    def vectors(self, name: str, index: np.ndarray | Sequence[int]) -> np.ndarray:
        """The `name` vectors at `index` (a copy)."""
        return self.matrix[name][index]

    def _set_vectors(self, name: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        positions = np.fromiter((self.index.get(b, -1) for b in ids), dtype=np.int64, count=len(ids))
        known = positions >= 0
        self.matrix[name][positions[known]] = vectors[known]
        for i in positions[known].tolist():
            self.present[name][i] = self._has_text(self.businesses[i], name)

    def set_graph_signals(
        self, ties: Sequence[Tie], blocked_pairs: set[tuple[str, str]], feedback: Sequence[Feedback], now: datetime
    ) -> None:
        """Exclusions, partners and learned factors: what the graph says beyond the businesses."""
        self.excluded: dict[int, set[int]] = defaultdict(set)
        self.partners: dict[int, set[int]] = defaultdict(set)
        for tie in ties:
            self._exclude(tie.a, tie.b)
            if tie.kind is TieKind.PARTNERS_WITH and tie.a in self.index and tie.b in self.index:
                self.partners[self.index[tie.a]].add(self.index[tie.b])
                self.partners[self.index[tie.b]].add(self.index[tie.a])
        for a, b in blocked_pairs:
            self._exclude(a, b)
        for item in feedback:
            if item.kind is FeedbackKind.DISMISSED and (
                item.reason != DismissReason.BAD_TIMING
                or now - item.at < timedelta(days=self.settings.weights.bad_timing_days)
            ):
                self._exclude(item.a, item.b)
            elif item.kind in (FeedbackKind.INTRO_MADE, FeedbackKind.INTRO_ACCEPTED, FeedbackKind.INTRO_DECLINED):
                self._exclude(item.a, item.b)  # introduced already: no need to suggest again
        self.learned = self._learned_factors(feedback, self.kind_index, len(self.kind_names) + 1)

    def patch(self, businesses: Sequence[StoredBusiness], vectors: dict[str, tuple[list[str], np.ndarray]]) -> bool:
        """Take in edited businesses without reloading everything.

        Returns False (changing nothing) when the edit changes the set of businesses or of
        markets; the caller then loads afresh.
        """
        for business in businesses:
            i = self.index.get(business.id)
            if i is None or self._market(business) != self.market[i]:
                return False
        for business in businesses:
            i = self.index[business.id]
            self.businesses[i] = business
            self.coords[i] = self._coords(business)
            self.opted_out[i] = business.record.opted_out
        for name in EMBEDDING_FIELDS:
            ids, stored = vectors.get(name, ([], np.zeros((0, self.prototypes.shape[1]), np.float32)))
            self._set_vectors(name, ids, stored)
            for business in businesses:  # a text that became empty has no vector any more
                i = self.index[business.id]
                self.present[name][i] = self.present[name][i] and self._has_text(business, name)
        changed = [self.index[b.id] for b in businesses]
        self._guess_kinds(changed)
        self.remote_business[changed] = self.remote_kind[self.kind_of[changed]]
        return True

    @staticmethod
    def _coords(business: StoredBusiness) -> tuple[float, float] | None:
        place = business.record.place
        if place and place.lat is not None and place.lon is not None:
            return (place.lat, place.lon)
        return None

    def _market_distances(self, count: int) -> np.ndarray:
        """km between market centres (mean of their businesses' coordinates); NaN if unknown.

        One extra market at the end, all NaN, stands for "market unknown" (id -1).
        """
        lat = np.full(count + 1, np.nan)
        lon = np.full(count + 1, np.nan)
        for m in range(count):
            points = [self.coords[i] for i in np.flatnonzero(self.market_id == m) if self.coords[i]]
            if points:
                lat[m], lon[m] = np.mean(points, axis=0)
        return _haversine_matrix(lat, lon, lat, lon)

    @staticmethod
    def _has_text(business: StoredBusiness, name: str) -> bool:
        record = business.record
        return name == "offers" or bool(record.customers if name == "customers" else record.needs)

    @staticmethod
    def _market(business: StoredBusiness) -> str | None:
        return business.record.place.market if business.record.place else None

    def _exclude(self, a: str, b: str) -> None:
        if a in self.index and b in self.index:
            self.excluded[self.index[a]].add(self.index[b])
            self.excluded[self.index[b]].add(self.index[a])

    def _guess_kinds(self, indices: list[int]) -> None:
        """Kind per business: the first CRM category the rules know, else inferred from its offer."""
        w = self.settings.weights
        to_infer = []
        for i in indices:
            categories = self.businesses[i].record.categories
            given = next((k for c in categories if (k := self.rules.kind_for(c))), None)
            if given:
                self._set_guess(i, KindGuess(given, 1.0, "given"))
            else:
                to_infer.append(i)
        if to_infer:
            similarity = self.vectors("offers", to_infer) @ self.prototypes.T
            logits = similarity / w.infer_temperature
            logits -= logits.max(axis=1, keepdims=True)
            probabilities = np.exp(logits)
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            best = probabilities.argmax(axis=1)
            for row, i in enumerate(to_infer):
                confidence = round(float(probabilities[row, best[row]]), 3)
                if confidence >= w.infer_min_confidence:
                    self._set_guess(i, KindGuess(self.kind_names[best[row]], confidence, "inferred"))
                else:
                    self._set_guess(i, KindGuess(None, confidence, "none"))

    def _set_guess(self, i: int, guess: KindGuess) -> None:
        self.guesses[i] = guess
        self.kind_of[i] = self.kind_index.get(guess.kind, len(self.kind_names))
        self.kind_confidence[i] = guess.confidence if guess.kind else 0.0

    def inferred_categories(self, indices: Sequence[int] | None = None) -> list[InferredCategory]:
        """Kinds read from text, for all businesses or those at `indices`."""
        chosen = range(len(self.businesses)) if indices is None else indices
        return [
            InferredCategory(self.businesses[i].id, self.guesses[i].kind, self.guesses[i].confidence)
            for i in chosen
            if self.guesses[i].source == "inferred"
        ]

    def _learned_factors(self, feedback: Sequence[Feedback], kind_index: dict[str, int], k: int) -> np.ndarray:
        """Per kind pair: (accepted + prior) / (accepted + rejected + 2 prior) * 2, kept in [0.5, 1.5].

        Accepted intros raise the pair's factor above 1.0; declined intros and
        'not relevant' or 'competitor' dismissals lower it. Timing and 'already know'
        say nothing about the kinds, so they do not count.
        """
        prior = self.settings.weights.feedback_prior
        accepted = np.zeros((k, k))
        rejected = np.zeros((k, k))
        if not feedback:
            return np.ones((k, k), dtype=np.float32)
        guess = {b.id: g.kind for b, g in zip(self.businesses, self.guesses, strict=True)}
        for item in feedback:
            a, b = kind_index.get(guess.get(item.a)), kind_index.get(guess.get(item.b))
            if a is None or b is None:
                continue
            if item.kind is FeedbackKind.INTRO_ACCEPTED:
                accepted[a, b] += 1
                accepted[b, a] += 1 if a != b else 0
            elif item.kind is FeedbackKind.INTRO_DECLINED or (
                item.kind is FeedbackKind.DISMISSED
                and item.reason in (DismissReason.NOT_RELEVANT, DismissReason.COMPETITOR)
            ):
                rejected[a, b] += 1
                rejected[b, a] += 1 if a != b else 0
        factor = 2 * (accepted + prior) / (accepted + rejected + 2 * prior)
        return np.clip(factor, 0.5, 1.5).astype(np.float32)

    # Candidates and scores
    def _local_columns(self, market: int) -> np.ndarray:
        """Businesses in the same market or one whose centre is within max_km."""
        if market < 0:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.near[market][self.market_id])

    def _far_columns(self, kind: int, columns: np.ndarray | None = None) -> np.ndarray:
        """Businesses anywhere (or of `columns`) that a business of `kind` may meet: related
        kinds, one side remote.

        Far pairs only make sense when the rules relate the two kinds and one of them works
        remotely; considering no others keeps candidate generation linear in the book's size.
        """
        columns = np.arange(len(self.businesses)) if columns is None else columns
        related = (self.relation_weight[kind] > 0) | (self.relation_weight[:, kind] > 0)
        related[-1] = False  # unknown kinds stay local
        mask = related[self.kind_of[columns]]
        if not self.remote_kind[kind]:
            mask &= self.remote_business[columns]
        return columns[mask]

    def far_candidates(self, rows: np.ndarray, on_progress: Callable[[int], None] = lambda n: None) -> np.ndarray:
        """Per row, up to FAR_CANDIDATES businesses outside its area that it may still meet.

        Those are businesses of related kinds where one side works remotely, ranked by an
        estimate (rule weight and need fit both ways). With a vector index (Neo4j) the index
        proposes them: who offers what the row needs, who needs what it offers. Without one,
        every eligible business is estimated in memory, a kind at a time. -1 pads the result.
        `on_progress` hears how many rows are done, as they are.
        """
        rows = np.asarray(rows, dtype=np.int64)
        result = np.full((len(rows), FAR_CANDIDATES), -1, dtype=np.int64)
        if self.neighbours is not None:
            self._far_from_index(rows, result)
            on_progress(len(rows))
        else:
            self._far_in_memory(rows, result, on_progress)
        return result

    def _far_in_memory(self, rows: np.ndarray, result: np.ndarray, on_progress: Callable[[int], None]) -> None:
        kinds = self.kind_of[rows]
        for kind in np.unique(kinds):
            eligible = self._far_columns(int(kind))
            if not len(eligible):
                on_progress(int((kinds == kind).sum()))
                continue
            estimator = _FarEstimator(self, int(kind), eligible)
            positions = np.flatnonzero(kinds == kind)
            positions = positions[np.argsort(self.market_id[rows[positions]], kind="stable")]
            for start in range(0, len(positions), 64):  # bounds the estimate's memory
                part = positions[start : start + 64]
                result[part] = estimator.best(rows[part])
                on_progress(len(part))

    def _far_from_index(self, rows: np.ndarray, result: np.ndarray) -> None:
        assert self.neighbours is not None
        proposed: list[set[int]] = [set() for _ in rows]
        # (indexed field, query field): who offers what the row needs, who needs what it offers
        for indexed, query in (("offers", "needs"), ("needs", "offers")):
            asking = np.flatnonzero(self.present[query][rows])
            if not len(asking):
                continue
            found = self.neighbours(indexed, self.vectors(query, rows[asking]), INDEX_NEIGHBOURS)
            for position, ids in zip(asking.tolist(), found, strict=True):
                proposed[position].update(self.index[b] for b in ids if b in self.index)
        for position, i in enumerate(rows.tolist()):
            if not proposed[position]:
                continue
            kind = int(self.kind_of[i])  # the index knows no kinds: keep the related, far ones
            columns = self._far_columns(kind, np.fromiter(proposed[position], dtype=np.int64))
            if len(columns):
                result[position] = _FarEstimator(self, kind, columns).best(np.array([i]))[0]

    def products(self, rows: np.ndarray, columns: np.ndarray) -> dict[str, np.ndarray]:
        """The embedding part of rows x columns: need fits both ways, audience fit, offer likeness."""
        w = self.settings.weights
        has_c, has_n = self.present["customers"], self.present["needs"]
        row_offers, column_offers = self.vectors("offers", rows), self.vectors("offers", columns)
        need_ab = _fit(self.vectors("needs", rows) @ column_offers.T, w)
        need_ab *= has_n[rows][:, None]
        need_ba = _fit(row_offers @ self.vectors("needs", columns).T, w)
        need_ba *= has_n[columns][None, :]
        audience = _fit(self.vectors("customers", rows) @ self.vectors("customers", columns).T, w)
        audience *= has_c[rows][:, None] & has_c[columns][None, :]
        lookalike = row_offers @ column_offers.T
        return {"need_ab": need_ab, "need_ba": need_ba, "audience": audience, "lookalike": lookalike}

    def pair_products(self, rows: np.ndarray, columns: np.ndarray) -> dict[str, np.ndarray]:
        """Like `products`, for a different set of columns per row (`columns` is rows x k)."""
        w = self.settings.weights
        has_c, has_n = self.present["customers"], self.present["needs"]

        def dot(mine: str, theirs: str) -> np.ndarray:
            return np.einsum("rd,rkd->rk", self.vectors(mine, rows), self.vectors(theirs, columns))

        need_ab = _fit(dot("needs", "offers"), w)
        need_ab *= has_n[rows][:, None]
        need_ba = _fit(dot("offers", "needs"), w)
        need_ba *= has_n[columns]
        audience = _fit(dot("customers", "customers"), w)
        audience *= has_c[rows][:, None] & has_c[columns]
        return {"need_ab": need_ab, "need_ba": need_ba, "audience": audience, "lookalike": dot("offers", "offers")}

    def _score(self, rows: np.ndarray, columns: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        """Pair scores from their parts; -inf where a pair must never be suggested.

        `rows` is a column vector and `columns` a row vector or a matrix: every look-up
        below broadcasts to the shape of the embedding products in `p`.
        """
        w = self.settings.weights
        kind, kc = self.kind_of[rows], self.kind_of[columns]
        conf = self.kind_confidence[rows] * self.kind_confidence[columns]

        shared = w.audience * p["audience"]
        benefit_ab = w.rule * self.relation_weight[kind, kc] * conf
        benefit_ab += w.need * p["need_ab"] + w.client * p["need_ba"] + shared
        benefit_ba = w.rule * self.relation_weight[kc, kind] * conf
        benefit_ba += w.need * p["need_ba"] + w.client * p["need_ab"] + shared
        high = np.maximum(benefit_ab, benefit_ba)
        low = np.minimum(benefit_ab, benefit_ba)
        mutual = np.divide(low, high, out=np.zeros_like(high), where=high > 0)
        score = benefit_ab
        score += benefit_ba
        score *= 0.25 * (1 + mutual)  # half the sum, scaled by 0.5 + 0.5 * mutual

        lookalike = p["lookalike"]
        span = w.lookalike_competitor - w.lookalike_from
        score -= w.lookalike_penalty * np.clip((lookalike - w.lookalike_from) / span, 0, 1)
        score *= self.learned[kind, kc] * self._geography(rows, columns)

        never = self.competing[kind, kc] & (conf >= 0.16)  # both kinds at least 40% sure
        never |= lookalike >= w.lookalike_competitor
        never |= self.opted_out[rows] | self.opted_out[columns]
        never |= rows == columns
        score[np.broadcast_to(never, score.shape)] = -np.inf
        return score

    def _geography(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """1 in the same market, nearby_factor within max_km, remote_factor if one side works
        remotely, else 0."""
        w = self.settings.weights
        mr, mc = self.market_id[rows], self.market_id[columns]
        km = self.market_km[mr, mc]
        remote = self.remote_business[rows] | self.remote_business[columns]
        factor = np.where(km <= self.settings.max_km, w.nearby_factor, np.where(remote, w.remote_factor, 0.0))
        return np.where((mr == mc) & (mr >= 0), 1.0, factor).astype(np.float32)

    def _drop_excluded(self, rows: np.ndarray, columns: np.ndarray, scores: np.ndarray) -> None:
        """-inf for pairs the graph rules out (ties, opt-outs of a pair, dismissals, past intros)."""
        for r, i in enumerate(rows.tolist()):
            if self.excluded.get(i):
                row_columns = columns if columns.ndim == 1 else columns[r]
                scores[r, np.isin(row_columns, list(self.excluded[i]))] = -np.inf

    def score_block(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Pair scores rows x columns; -inf where a pair must never be suggested."""
        rows = np.asarray(rows)
        scores = self._score(rows[:, None], columns[None, :], self.products(rows, columns))
        self._drop_excluded(rows, columns, scores)
        return scores

    def score_candidates(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Pair scores for a different set of columns per row (rows x k, -1 for none)."""
        valid = columns >= 0
        safe = np.where(valid, columns, 0)
        scores = self._score(rows[:, None], safe, self.pair_products(rows, safe))
        scores[~valid] = -np.inf
        self._drop_excluded(rows, safe, scores)
        return scores

    def distance_km(self, i: int, j: int) -> float | None:
        if self.coords[i] is None or self.coords[j] is None:
            return None
        (lat1, lon1), (lat2, lon2) = self.coords[i], self.coords[j]
        return float(_haversine_matrix(np.array([lat1]), np.array([lon1]), np.array([lat2]), np.array([lon2]))[0, 0])

    def shared_partners(self, i: int, j: int) -> set[int]:
        return self.partners.get(i, set()) & self.partners.get(j, set())

    def top_pairs(self, rows: Sequence[int], far: np.ndarray | None = None) -> dict[int, list[tuple[int, float]]]:
        """For each row, its best candidates (index, score), best first, above the minimum score.

        Candidates are the row's market and nearby markets, scored in blocks that share one
        embedding product per market, plus the row's far candidates (`far`, aligned with
        `rows`; see `far_candidates`).
        """
        rows = np.asarray(rows)
        if far is None:
            far = self.far_candidates(rows)
        position = {i: p for p, i in enumerate(rows.tolist())}
        result: dict[int, list[tuple[int, float]]] = {}
        for market in np.unique(self.market_id[rows]):
            local = self._local_columns(int(market))
            in_market = rows[self.market_id[rows] == market]
            step = max(16, BLOCK_PAIRS // max(len(local), 1))
            for start in range(0, len(in_market), step):
                part = in_market[start : start + step]
                scores = self.score_block(part, local)
                far_part = far[[position[i] for i in part.tolist()]]
                far_scores = self.score_candidates(part, far_part)
                columns = np.concatenate([np.broadcast_to(local, (len(part), len(local))), far_part], axis=1)
                result.update(self._rank_rows(part, columns, np.concatenate([scores, far_scores], axis=1)))
        return result

    def _rank_rows(
        self, rows: np.ndarray, columns: np.ndarray, scores: np.ndarray
    ) -> dict[int, list[tuple[int, float]]]:
        w = self.settings.weights
        keep = min(self.settings.top_n * 3, scores.shape[1])
        if keep == 0:
            return {i: [] for i in rows.tolist()}
        best = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        best_scores = np.take_along_axis(scores, best, axis=1).tolist()
        best_columns = np.take_along_axis(columns, best, axis=1).tolist()
        result: dict[int, list[tuple[int, float]]] = {}
        for r, i in enumerate(rows.tolist()):
            ranked = []
            for j, score in zip(best_columns[r], best_scores[r], strict=True):
                if score == -np.inf:
                    continue
                bonus = w.shared_partner_bonus * min(len(self.shared_partners(i, j)), 2) if i in self.partners else 0.0
                total = score + bonus
                if total >= w.min_score:
                    ranked.append((j, round(total, 4)))
            ranked.sort(key=self._rank_key)
            result[i] = self._varied(ranked)
        return result

    def _rank_key(self, item: tuple[int, float]) -> tuple[float, str]:
        return (-item[1], self.businesses[item[0]].id)

    def _varied(self, ranked: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """The top_n chosen one at a time by score x variety_decay ** (same kind already chosen),
        then shown by score: a florist hears of a planner, a venue and a photographer rather
        than three planners, unless the third planner is clearly better."""
        decay, unknown = self.settings.weights.variety_decay, len(self.kind_names)
        left = list(ranked)
        chosen: list[tuple[int, float]] = []
        per_kind: Counter[int] = Counter()
        while left and len(chosen) < self.settings.top_n:
            best = max(range(len(left)), key=lambda n: left[n][1] * decay ** per_kind[int(self.kind_of[left[n][0]])])
            item = left.pop(best)
            kind = int(self.kind_of[item[0]])
            per_kind[kind] += kind != unknown
            chosen.append(item)
        return sorted(chosen, key=self._rank_key)

    def blocks(self, targets: Sequence[int]) -> list[list[int]]:
        """`targets` grouped by market (the unit of candidate generation), in a stable order."""
        grouped: dict[int, list[int]] = defaultdict(list)
        for i in sorted(targets):
            grouped[int(self.market_id[i])].append(i)
        return [grouped[m] for m in sorted(grouped)]


class _FarEstimator:
    """Ranks far candidates of one kind of business by a cheap estimate: the rule weight plus
    need fit both ways (two matrix products), leaving out the local pairs that are scored
    exactly anyway. Torch runs the products and the top-k on every core.
    """

    def __init__(self, data: MatchData, kind: int, columns: np.ndarray):
        w = data.settings.weights
        self.data = data
        self.columns = columns[np.argsort(data.market_id[columns], kind="stable")]
        self.column_markets = data.market_id[self.columns]
        self.offers_t = torch.from_numpy(data.vectors("offers", self.columns)).T
        self.needs_t = torch.from_numpy(data.vectors("needs", self.columns)).T
        rule = w.rule * data.relation_weight[kind, data.kind_of[self.columns]]
        self.rule = torch.from_numpy(np.ascontiguousarray(rule[None, :], dtype=np.float32))

    def best(self, rows: np.ndarray) -> np.ndarray:
        """Each row's best FAR_CANDIDATES columns, -1 padded; `rows` sorted by market."""
        data, w = self.data, self.data.settings.weights
        needs = torch.from_numpy(data.vectors("needs", rows))
        offers = torch.from_numpy(data.vectors("offers", rows))
        estimate = torch.addmm(self.rule, needs, self.offers_t, alpha=w.need)
        estimate.addmm_(offers, self.needs_t, alpha=w.client)
        markets = data.market_id[rows]
        for market, start, end in _runs(markets):
            for near in np.flatnonzero(data.near[market]):
                left, right = np.searchsorted(self.column_markets, [near, near + 1])
                estimate[start:end, left:right] = -np.inf
        best_columns = np.full((len(rows), FAR_CANDIDATES), -1, dtype=np.int64)
        keep = min(FAR_CANDIDATES, len(self.columns))
        if keep:
            values, best = torch.topk(estimate, keep, dim=1)
            best_columns[:, :keep] = np.where(np.isfinite(values.numpy()), self.columns[best.numpy()], -1)
        return best_columns


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, start, end) for each run of equal values in a sorted array."""
    if not len(values):
        return []
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    return [(int(values[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
