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

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

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


FAR_SHORTLIST = 400  # far candidates per business scored in full


class MatchData:
    """Everything scoring needs, as arrays indexed by business position."""

    def __init__(
        self,
        businesses: Sequence[StoredBusiness],
        vectors: dict[str, tuple[list[str], np.ndarray]],
        rules: Rules,
        prototype_vectors: np.ndarray,
        ties: Sequence[Tie],
        blocked_pairs: set[tuple[str, str]],
        feedback: Sequence[Feedback],
        settings: MatchSettings,
        now: datetime,
    ):
        self.businesses = list(businesses)
        self.rules = rules
        self.settings = settings
        self.prototypes = prototype_vectors
        self.index = {b.id: i for i, b in enumerate(self.businesses)}
        n = len(self.businesses)
        dims = prototype_vectors.shape[1]
        self.present = {name: np.zeros(n, dtype=bool) for name in EMBEDDING_FIELDS}
        self.matrix = {name: np.zeros((n, dims), dtype=np.float32) for name in EMBEDDING_FIELDS}
        for name in EMBEDDING_FIELDS:
            ids, stored = vectors.get(name, ([], np.zeros((0, dims), np.float32)))
            self._set_vectors(name, {business_id: stored[row] for row, business_id in enumerate(ids)})

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
        self.market_km = self._market_distances(len(market_ids))
        self.remote_business = self.remote_kind[self.kind_of]
        self.opted_out = np.array([b.record.opted_out for b in self.businesses], dtype=bool)
        self.markets: dict[str | None, list[int]] = defaultdict(list)
        for i, market in enumerate(self.market):
            self.markets[market].append(i)
        self.set_graph_signals(ties, blocked_pairs, feedback, now)

    def _set_vectors(self, name: str, vectors: dict[str, np.ndarray]) -> None:
        for business_id, vector in vectors.items():
            i = self.index.get(business_id)
            if i is not None:
                self.matrix[name][i] = vector
        for i in {self.index[b] for b in vectors if b in self.index}:
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

    def patch(self, businesses: Sequence[StoredBusiness], vectors: dict[str, dict[str, np.ndarray]]) -> bool:
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
            self._set_vectors(name, vectors.get(name, {}))
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
        """km between market centres (mean of their businesses' coordinates); NaN if unknown."""
        lat = np.full(count, np.nan)
        lon = np.full(count, np.nan)
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
            similarity = self.matrix["offers"][to_infer] @ self.prototypes.T
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
        near = np.flatnonzero(self.market_km[market] <= self.settings.max_km)
        return np.flatnonzero(np.isin(self.market_id, [market, *near]))

    def _far_columns(self, kind: int) -> np.ndarray:
        """Businesses anywhere that a business of `kind` may meet: related kinds, one side remote.

        Far pairs only make sense when the rules relate the two kinds and one of them works
        remotely; considering no others keeps candidate generation linear in the book's size.
        """
        related = (self.relation_weight[kind] > 0) | (self.relation_weight[:, kind] > 0)
        related[-1] = False  # unknown kinds stay local
        mask = related[self.kind_of]
        if not self.remote_kind[kind]:
            mask &= self.remote_business
        return np.flatnonzero(mask)

    def products(self, rows: np.ndarray, columns: np.ndarray) -> dict[str, np.ndarray]:
        """The embedding part of rows x columns: need fits both ways, audience fit, offer likeness."""
        w = self.settings.weights
        offers, customers, needs = self.matrix["offers"], self.matrix["customers"], self.matrix["needs"]
        has_c, has_n = self.present["customers"], self.present["needs"]
        row_offers, column_offers = offers[rows], offers[columns]
        need_ab = _fit(needs[rows] @ column_offers.T, w)
        need_ab *= has_n[rows][:, None]
        need_ba = _fit(row_offers @ needs[columns].T, w)
        need_ba *= has_n[columns][None, :]
        audience = _fit(customers[rows] @ customers[columns].T, w)
        audience *= has_c[rows][:, None] & has_c[columns][None, :]
        lookalike = row_offers @ column_offers.T
        return {"need_ab": need_ab, "need_ba": need_ba, "audience": audience, "lookalike": lookalike}

    def score_block(
        self, rows: Sequence[int], columns: np.ndarray, products: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Pair scores rows x columns; -inf where a pair must never be suggested.

        `rows` share one market and one kind (top_pairs groups them so), which turns the
        rule, learned-factor, competitor and geography look-ups into per-column vectors.
        `products` may be handed in when computed for a larger block of rows.
        """
        w = self.settings.weights
        rows = np.asarray(rows)
        kind, market = int(self.kind_of[rows[0]]), int(self.market_id[rows[0]])
        assert (self.kind_of[rows] == kind).all() and (self.market_id[rows] == market).all()
        p = products if products is not None else self.products(rows, columns)
        need_ab, need_ba, audience, lookalike = p["need_ab"], p["need_ba"], p["audience"], p["lookalike"]
        kc = self.kind_of[columns]
        conf = np.outer(self.kind_confidence[rows], self.kind_confidence[columns])

        shared = w.audience * audience
        benefit_ab = (w.rule * self.relation_weight[kind, kc])[None, :] * conf
        benefit_ab += w.need * need_ab + w.client * need_ba + shared
        benefit_ba = (w.rule * self.relation_weight[kc, kind])[None, :] * conf
        benefit_ba += w.need * need_ba + w.client * need_ab + shared
        high = np.maximum(benefit_ab, benefit_ba)
        low = np.minimum(benefit_ab, benefit_ba)
        mutual = np.divide(low, high, out=np.zeros_like(high), where=high > 0)
        score = benefit_ab
        score += benefit_ba
        score *= 0.25 * (1 + mutual)  # half the sum, scaled by 0.5 + 0.5 * mutual

        span = w.lookalike_competitor - w.lookalike_from
        score -= w.lookalike_penalty * np.clip((lookalike - w.lookalike_from) / span, 0, 1)
        score *= (self.learned[kind, kc] * self._geography(market, kind, columns))[None, :]

        never = self.competing[kind, kc][None, :] & (conf >= 0.16)  # both kinds at least 40% sure
        never |= lookalike >= w.lookalike_competitor
        never |= self.opted_out[rows][:, None] | self.opted_out[columns][None, :]
        never |= np.equal.outer(rows, columns)
        for r, i in enumerate(rows):
            if self.excluded.get(i):
                never[r, np.isin(columns, list(self.excluded[i]))] = True
        score[never] = -np.inf
        return score

    def _geography(self, market: int, kind: int, columns: np.ndarray) -> np.ndarray:
        """Per column: 1 in `market`, nearby_factor within max_km, remote_factor if one side works
        remotely, else 0."""
        w = self.settings.weights
        mc = self.market_id[columns]
        if market < 0:
            same = np.zeros(len(columns), dtype=bool)
            km = np.full(len(columns), np.nan)
        else:
            same = mc == market
            km = np.where(mc >= 0, self.market_km[market][np.maximum(mc, 0)], np.nan)
        remote = self.remote_kind[kind] | self.remote_business[columns]
        factor = np.where(km <= self.settings.max_km, w.nearby_factor, np.where(remote, w.remote_factor, 0.0))
        return np.where(same, 1.0, factor).astype(np.float32)

    def distance_km(self, i: int, j: int) -> float | None:
        if self.coords[i] is None or self.coords[j] is None:
            return None
        (lat1, lon1), (lat2, lon2) = self.coords[i], self.coords[j]
        return float(_haversine_matrix(np.array([lat1]), np.array([lon1]), np.array([lat2]), np.array([lon2]))[0, 0])

    def shared_partners(self, i: int, j: int) -> set[int]:
        return self.partners.get(i, set()) & self.partners.get(j, set())

    def top_pairs(self, rows: Sequence[int]) -> dict[int, list[tuple[int, float]]]:
        """For each row, its best candidates (index, score), best first, above the minimum score.

        Candidates are generated per (market, kind) group: the market and nearby markets, plus
        far businesses of related kinds where one side works remotely.
        """
        rows = np.asarray(rows)
        result: dict[int, list[tuple[int, float]]] = {}
        for market in np.unique(self.market_id[rows]):
            in_market = rows[self.market_id[rows] == market]
            in_market = in_market[np.argsort(self.kind_of[in_market], kind="stable")]
            local = self._local_columns(int(market))
            # One large product per market for the local candidates; each kind is a row slice of it.
            local_products = self.products(in_market, local)
            kinds, starts = np.unique(self.kind_of[in_market], return_index=True)
            ends = [*starts[1:], len(in_market)]
            for kind, start, end in zip(kinds, starts, ends, strict=True):
                group = in_market[start:end]
                sliced = {name: matrix[start:end] for name, matrix in local_products.items()}
                scores = self.score_block(group, local, sliced)
                far = np.setdiff1d(self._far_columns(int(kind)), local, assume_unique=True)
                columns = local
                if len(far):
                    far, allowed = self._shortlist(group, int(kind), far)
                    far_scores = self.score_block(group, far)
                    if allowed is not None:
                        far_scores[~allowed] = -np.inf
                    columns = np.concatenate([local, far])
                    scores = np.concatenate([scores, far_scores], axis=1)
                result.update(self._rank_rows(group, columns, scores))
        return result

    def _shortlist(self, rows: np.ndarray, kind: int, far: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Far candidates worth scoring in full: each row's best FAR_SHORTLIST by rule and need fit.

        Remote-working kinds may meet related businesses anywhere, so their far candidates
        grow with the book; a cheap two-product estimate keeps the exact scoring bounded.
        Each row keeps only its own shortlist, so a row's result does not depend on its group.
        """
        w = self.settings.weights
        if len(far) <= FAR_SHORTLIST:
            return far, None
        estimate = self.matrix["needs"][rows] @ self.matrix["offers"][far].T * w.need
        estimate += self.matrix["offers"][rows] @ self.matrix["needs"][far].T * w.client
        estimate += (w.rule * self.relation_weight[kind, self.kind_of[far]])[None, :]
        best = np.argpartition(-estimate, FAR_SHORTLIST - 1, axis=1)[:, :FAR_SHORTLIST]
        union = np.unique(best)
        allowed = np.zeros((len(rows), len(union)), dtype=bool)
        allowed[np.arange(len(rows))[:, None], np.searchsorted(union, best)] = True
        return far[union], allowed

    def _rank_rows(
        self, rows: np.ndarray, columns: np.ndarray, scores: np.ndarray
    ) -> dict[int, list[tuple[int, float]]]:
        w = self.settings.weights
        keep = min(self.settings.top_n * 3, len(columns))
        result: dict[int, list[tuple[int, float]]] = {}
        for r, i in enumerate(rows.tolist()):
            row = scores[r]
            best = np.argpartition(-row, keep - 1)[:keep] if keep else []
            ranked = []
            for c in best:
                if not np.isfinite(row[c]):
                    continue
                j = int(columns[c])
                bonus = w.shared_partner_bonus * min(len(self.shared_partners(i, j)), 2) if i in self.partners else 0.0
                total = float(row[c]) + bonus
                if total >= w.min_score:
                    ranked.append((j, round(total, 4)))
            ranked.sort(key=lambda item: (-item[1], self.businesses[item[0]].id))
            result[i] = ranked[: self.settings.top_n]
        return result

    def blocks(self, targets: Sequence[int]) -> list[list[int]]:
        """`targets` grouped by market (the unit of candidate generation), in a stable order."""
        grouped: dict[int, list[int]] = defaultdict(list)
        for i in sorted(targets):
            grouped[int(self.market_id[i])].append(i)
        return [grouped[m] for m in sorted(grouped)]
