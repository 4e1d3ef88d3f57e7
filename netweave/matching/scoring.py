"""Pair scores from their parts (see `netweave.matching.settings` for the formula).

Every function here is elementwise over (row, column) pairs after exact dot products, so
a pair's score is the same bits whether it is scored alone or in a block: the property an
exact incremental refresh rests on. Rows come first: `score(rows, columns)[r, c]` is the
score of columns[c] in the list of rows[r].
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from netweave.matching.eligibility import Eligibility
from netweave.matching.features import Features
from netweave.matching.geography import Geography
from netweave.matching.kinds import KindTable
from netweave.matching.settings import MatchSettings
from netweave.matching.vectors import cosine


class Scorer:
    def __init__(
        self,
        features: Features,
        kinds: KindTable,
        geography: Geography,
        eligibility: Eligibility,
        settings: MatchSettings,
        scale: float,
    ):
        self.f = features
        self.kinds = kinds
        self.geo = geography
        self.elig = eligibility
        self.settings = settings
        self.w = settings.weights
        self.scale = scale
        # relation_weight[a, b] is how kind a relates to kind b; the transpose, kept contiguous,
        # reads the other way with the same look-ups.
        table = kinds.relation_weight
        self._relation_tables = (table, np.ascontiguousarray(table.T))

    # Embedding parts
    def _fit(self, dots: np.ndarray) -> np.ndarray:
        """Exact dot products -> fits within 0..1 (in place)."""
        similarity = cosine(dots, self.scale)
        similarity -= self.w.fit_floor
        similarity *= 1 / self.w.fit_span
        return np.clip(similarity, 0.0, 1.0, out=similarity)

    def products(self, rows: np.ndarray, columns: np.ndarray) -> dict[str, np.ndarray]:
        """The embedding parts of rows x columns: need fits both ways, audience fit, offer likeness."""
        v, present = self.f.vectors, self.f.present
        row_offers, column_offers = v["offers"][rows], v["offers"][columns]
        need_ab = self._fit(v["needs"][rows] @ column_offers.T)
        need_ab *= present["needs"][rows][:, None]
        need_ba = self._fit(row_offers @ v["needs"][columns].T)
        need_ba *= present["needs"][columns][None, :]
        audience = self._fit(v["customers"][rows] @ v["customers"][columns].T)
        audience *= present["customers"][rows][:, None] & present["customers"][columns][None, :]
        lookalike = cosine(row_offers @ column_offers.T, self.scale)
        return {"need_ab": need_ab, "need_ba": need_ba, "audience": audience, "lookalike": lookalike}

    def pair_products(self, rows: np.ndarray, columns: np.ndarray) -> dict[str, np.ndarray]:
        """Like `products`, with a different set of columns per row (`columns` is rows x k)."""
        v, present = self.f.vectors, self.f.present

        def dot(mine: str, theirs: str) -> np.ndarray:
            return np.einsum("rd,rkd->rk", v[mine][rows], v[theirs][columns])

        need_ab = self._fit(dot("needs", "offers"))
        need_ab *= present["needs"][rows][:, None]
        need_ba = self._fit(dot("offers", "needs"))
        need_ba *= present["needs"][columns]
        audience = self._fit(dot("customers", "customers"))
        audience *= present["customers"][rows][:, None] & present["customers"][columns]
        return {
            "need_ab": need_ab,
            "need_ba": need_ba,
            "audience": audience,
            "lookalike": cosine(dot("offers", "offers"), self.scale),
        }

    # Scores
    def score(self, rows: np.ndarray, columns: np.ndarray, now: float) -> np.ndarray:
        """Scores rows x columns; -inf where a pair must never be suggested."""
        rows = np.asarray(rows, dtype=np.int64)
        columns = np.asarray(columns, dtype=np.int64)
        scores, related = self._combine(rows[:, None], columns[None, :], self.products(rows, columns))
        self._graph_signals(rows, np.broadcast_to(columns, (len(rows), len(columns))), scores, now)
        return self._qualify(scores, related)

    def score_candidates(self, rows: np.ndarray, columns: np.ndarray, now: float) -> np.ndarray:
        """Scores for a different set of columns per row (rows x k, -1 for none)."""
        valid = columns >= 0
        safe = np.where(valid, columns, rows[:, None])  # a row against itself is never suggested
        scores, related = self._combine(rows[:, None], safe, self.pair_products(rows, safe))
        scores[~valid] = -np.inf
        self._graph_signals(rows, safe, scores, now)
        return self._qualify(scores, related)

    def _qualify(self, scores: np.ndarray, related: np.ndarray) -> np.ndarray:
        """-inf below `min_score`, or below `min_related_score` for a pair the rules relate: a
        sparse account still meets its likely kind's partners; a pair the texts alone carry must
        be clear."""
        low = scores < self.w.min_score
        low &= ~related
        low |= scores < self.w.min_related_score
        scores[low] = -np.inf
        return scores

    def _combine(
        self, rows: np.ndarray, columns: np.ndarray, p: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores, and whether the rules relate the two kinds under some reading.

        `rows` is a column vector and `columns` a row vector or a matrix: every look-up below
        broadcasts to the shape of the embedding parts in `p`."""
        w, f, kinds = self.w, self.f, self.kinds
        kind_r, kind_c = f.kind[rows], f.kind[columns]
        conf_r, conf_c = f.confidence[rows], f.confidence[columns]
        conf = np.sqrt(conf_r * conf_c)  # both sides' kind confidence (geometric mean)

        shared = w.audience * p["audience"]
        benefit_ab, benefit_ba = self._rule(rows, columns)
        related = benefit_ab > 0
        related |= benefit_ba > 0
        benefit_ab += w.need * p["need_ab"] + w.client * p["need_ba"] + shared
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
        # Two kinds the rules know but do not relate: the texts alone must carry the pair.
        unrelated = kinds.unrelated[kind_r, kind_c]
        unrelated *= -w.unrelated_penalty * conf
        unrelated += 1
        score *= unrelated
        score *= self._geography(rows, columns)
        self._apply_affinity(rows, columns, score)

        # Competing kinds are never introduced, however unsure an inferred kind is: a missed
        # introduction costs less than introducing a customer to its competitor.
        guard_r, guard_c = f.guard_kind[rows], f.guard_kind[columns]
        never = kinds.competing[guard_r, guard_c]
        never |= kinds.competing[f.guard_kind2[rows], guard_c]
        never |= kinds.competing[guard_r, f.guard_kind2[columns]]
        never |= lookalike >= w.lookalike_competitor
        never |= f.opted_out[rows] | f.opted_out[columns] | ~f.active[rows] | ~f.active[columns]
        never |= rows == columns
        if not self.settings.across_books:
            never |= f.owner[rows] != f.owner[columns]
        score[np.broadcast_to(never, score.shape)] = -np.inf
        return score, related

    def _rule(self, rows: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """w.rule x how the rules relate the row's kind to the column's, and the column's to the
        row's, each kind weighed by how likely it is (geometric mean): the likeliest reading of
        each side, or a runner-up kind's if that relates better (an inferred "Cabinet Maker"
        that may be a kitchen remodeler).

        `rows` is a column vector, `columns` a row vector or a matrix. Runner-ups are few (a given
        kind has none), so they are looked up only where they are; every element is computed by
        the same operations in the same order on every path."""
        f = self.f
        kind_r, kind_c = f.guard_kind[rows], f.guard_kind[columns]
        root_r, root_c = f.guard_root[rows], f.guard_root[columns]
        second_r, second_c = f.guard_root2[rows], f.guard_root2[columns]
        row_at = np.flatnonzero(second_r[:, 0]).tolist()
        one_row_of_columns = columns.shape[0] == 1
        column_at = np.flatnonzero(second_c[0]).tolist() if one_row_of_columns else None
        results = []
        for table in self._relation_tables:  # row -> column, then column -> row
            best = table[kind_r, kind_c]
            best *= root_r
            best *= root_c
            if row_at:
                theirs = columns if one_row_of_columns else columns[row_at]
                other = table[f.guard_kind2[rows[row_at]], f.guard_kind[theirs]]
                other *= second_r[row_at]
                other *= f.guard_root[theirs]
                best[row_at] = np.maximum(best[row_at], other)
            if column_at:
                other = table[kind_r, f.guard_kind2[columns[:, column_at]]]
                other *= root_r
                other *= second_c[:, column_at]
                best[:, column_at] = np.maximum(best[:, column_at], other)
            elif column_at is None and second_c.any():  # a few candidates per row
                other = table[kind_r, f.guard_kind2[columns]]
                other *= root_r
                other *= second_c
                np.maximum(best, other, out=best)
            best *= self.w.rule
            results.append(best)
        return results[0], results[1]

    def _geography(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """1 in the same market, nearby_factor in a near one, remote_factor if one side works
        remotely, else 0."""
        w, f = self.w, self.f
        mr, mc = f.market[rows], f.market[columns]
        remote = f.remote[rows] | f.remote[columns]
        factor = np.where(self.geo.near[mr, mc], w.nearby_factor, np.where(remote, w.remote_factor, 0.0))
        return np.where((mr == mc) & (mr >= 0), 1.0, factor).astype(np.float32)

    def _apply_affinity(self, rows: np.ndarray, columns: np.ndarray, score: np.ndarray) -> None:
        """score *= sqrt(affinity of the row for the column's kind * the column's for the row's)."""
        affinity = self.elig.affinity
        if not affinity:
            return
        kind_r = np.broadcast_to(self.f.kind[rows], score.shape)
        kind_c = np.broadcast_to(self.f.kind[columns], score.shape)
        all_columns = np.broadcast_to(columns, score.shape)
        factor = np.ones(score.shape, dtype=np.float32)
        learned = np.fromiter(affinity, dtype=np.int64, count=len(affinity))
        rows_learned = [(r, i) for r, i in enumerate(rows[:, 0].tolist()) if i in affinity]
        columns_learned = np.nonzero(np.isin(all_columns, learned))
        if not rows_learned and not len(columns_learned[0]):
            return
        for r, i in rows_learned:
            factor[r] *= affinity[i][kind_c[r]]
        for r, c in zip(*columns_learned, strict=True):
            factor[r, c] *= affinity[int(all_columns[r, c])][kind_r[r, c]]
        score *= np.sqrt(factor)

    def _graph_signals(self, rows: np.ndarray, columns: np.ndarray, scores: np.ndarray, now: float) -> None:
        """-inf for pairs the graph rules out now (ties, blocks, dismissals, past intros); a
        bonus for shared partners."""
        excluded, partners, w = self.elig.excluded, self.elig.partners, self.w
        for r, i in enumerate(rows.tolist()):
            if i in excluded:
                others, until = excluded[i]
                scores[r, np.isin(columns[r], others[until > now])] = -np.inf
            if i in partners:
                shared = Counter(j for partner in partners[i] for j in partners.get(partner, ()) if j != i)
                if not shared:
                    continue
                keys = np.fromiter(shared, dtype=np.int64, count=len(shared))
                for c in np.flatnonzero(np.isin(columns[r], keys)).tolist():
                    scores[r, c] += w.shared_partner_bonus * min(shared[int(columns[r, c])], w.max_shared_partners)

    # Far candidates
    def estimate_from(self, rule: np.ndarray, needs: np.ndarray, offers: np.ndarray) -> np.ndarray:
        """The far-candidate estimate from its exact parts: `rule` (w.rule x relation weight),
        and the dot products of row needs . column offers and row offers . column needs. Every
        path that estimates goes through here, so they all compute the same bits."""
        estimate = rule
        estimate += self.w.need * cosine(needs, self.scale)
        estimate += self.w.client * cosine(offers, self.scale)
        return estimate

    def estimate(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """A cheap ranking of far candidates, rows x columns: rule weight plus need fit both ways."""
        f, v = self.f, self.f.vectors
        rule = self.w.rule * self.kinds.relation_weight[f.kind[rows][:, None], f.kind[columns][None, :]]
        return self.estimate_from(
            rule, v["needs"][rows] @ v["offers"][columns].T, v["offers"][rows] @ v["needs"][columns].T
        )
