"""Every weight and threshold of matching, in one place.

A pair's score, for businesses a and b: each direction gets a benefit (what a gains
from meeting b), each within 0..1 because the four benefit weights add up to 1:

    benefit(a<-b) = rule * relation(kind a, kind b) * sqrt(confidence(a) * confidence(b))
                  + need * fit(needs a . offers b)       a gets what it needs
                  + client * fit(needs b . offers a)     a gains b as a client
                  + audience * fit(customers a . customers b)

The pair scores the mean of both directions scaled by 0.5 + 0.5 * (smaller / larger), so a
one-sided pair counts less; minus a look-alike penalty; times geography (1, nearby, remote)
and each side's learned affinity for the other's kind (0.5..1.5 each, their geometric mean);
plus a bonus per shared partner. Scores are therefore at most about 1.6, and pairs below
`min_score` are not suggested (below `min_related_score` when the rules relate their kinds).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Weights:
    # The benefit of one direction (add up to 1).
    rule: float = 0.40
    need: float = 0.30
    client: float = 0.15
    audience: float = 0.15
    # Embedding fits: cosine similarity rescaled so that `fit_floor` counts 0 and
    # `fit_floor + fit_span` counts 1.
    fit_floor: float = 0.15
    fit_span: float = 0.45
    # Offers this alike start to look like competitors, and from `lookalike_competitor` are.
    lookalike_from: float = 0.62
    lookalike_competitor: float = 0.80
    lookalike_penalty: float = 0.35
    # Kinds the rules know but relate in no sphere or pair score this much less (times both
    # sides' kind confidence).
    unrelated_penalty: float = 0.4
    shared_partner_bonus: float = 0.05  # per shared partner
    max_shared_partners: int = 2
    nearby_factor: float = 0.9  # different market but within max_km
    remote_factor: float = 0.85  # far apart, one side works remotely
    min_score: float = 0.10
    min_related_score: float = 0.05  # ... for a pair the rules relate (under some reading of the kinds)
    # Kind inference from a business's offer text (softmax over the kinds' prototypes).
    infer_min_confidence: float = 0.25
    infer_temperature: float = 0.04
    infer_outside_industry: float = 0.1  # prior odds of a kind not filed under the CRM's industry
    infer_outside_family: float = 0.01  # ... and of a kind a shared name ("Attorney") cannot mean
    guard_runner_up_from: float = 0.1  # an inferred runner-up kind this likely is kept from its competitors too
    # Learned affinity of a business for a kind: (accepted + prior) / (accepted + rejected + 2 prior)
    # * 2, kept within [affinity_min, affinity_max].
    feedback_prior: float = 2.0
    feedback_half_life_days: float = 365.0  # a verdict this much older than the latest counts half
    affinity_min: float = 0.5
    affinity_max: float = 1.5
    bad_timing_days: int = 90  # a 'bad timing' dismissal hides the pair this long
    max_per_kind: int = 2  # businesses of one kind in a list, unless nothing else qualifies
    # Far candidates are ranked by an estimate: rule weight plus need fit both ways (raw cosine).
    # Reasons: which signals are worth a sentence, and how strongly each sentence ranks.
    reason_need_from: float = 0.3
    reason_client_from: float = 0.3
    reason_client_strength: float = 0.7
    reason_audience_from: float = 0.4
    reason_audience_strength: float = 0.8
    reason_shared_partner_strength: float = 0.95
    reason_max_signals: int = 3  # strongest signal sentences per side, then the kind and the geography


@dataclass(frozen=True)
class MatchSettings:
    top_n: int = 5  # suggestions kept per business
    max_km: float = 60.0  # markets whose centres are this close count as nearby
    across_books: bool = True  # may a pair span two salespeople's books?
    pool_factor: int = 3  # each list is chosen (for variety) from the best top_n * pool_factor
    far_candidates: int = 40  # far candidates per business scored in full
    index_neighbours: int = 100  # neighbours asked of a vector index per query
    block_pairs: int = 1_000_000  # pairs scored at once (a dozen float32 matrices of this size)
    weights: Weights = field(default_factory=Weights)

    @property
    def pool_size(self) -> int:
        return self.top_n * self.pool_factor

    def digest(self) -> str:
        """Changes whenever a setting that shapes the lists changes (block size does not)."""
        shaping = {name: value for name, value in asdict(self).items() if name != "block_pairs"}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]
