"""Which pairs may be suggested, and what the graph says about each pair beyond the two
businesses: ties, blocks, feedback, shared partners and each business's learned affinity.

Everything here is kept per business and rebuilt for one business from its own ties,
blocks and feedback, so a change to a business is taken in by reloading just that business.
Learning is per business: an accepted intro makes its kind of partner count more *for that
business* (and the other side's kind for the other side); a declined intro or a 'not
relevant'/'competitor' dismissal counts less. A pair is scored with the geometric mean of
both sides' affinities. (Book-wide learning per kind pair would let one dismissal change
every list in the book; this keeps each verdict's reach to the two businesses it is about.)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from graph.records import DismissReason, Feedback, FeedbackKind, Tie, TieKind
from netweave.matching.settings import Weights

FOREVER = math.inf

_POSITIVE = {FeedbackKind.INTRO_ACCEPTED}
_INTRODUCED = {FeedbackKind.INTRO_MADE, FeedbackKind.INTRO_ACCEPTED, FeedbackKind.INTRO_DECLINED}


def _is_negative(item: Feedback) -> bool:
    return item.kind is FeedbackKind.INTRO_DECLINED or (
        item.kind is FeedbackKind.DISMISSED and item.reason in (DismissReason.NOT_RELEVANT, DismissReason.COMPETITOR)
    )


@dataclass
class PairSignals:
    """What the graph says about one business's pairs, by the other business's id."""

    excluded_until: dict[str, float] = field(default_factory=dict)  # POSIX time the pair may be suggested again
    partners: set[str] = field(default_factory=set)
    # other id -> (accepted, rejected), each verdict weighted by its age
    verdicts: dict[str, tuple[float, float]] = field(default_factory=dict)


def pair_signals(
    business_id: str,
    ties: Sequence[Tie],
    blocked: set[tuple[str, str]],
    feedback: Sequence[Feedback],
    weights: Weights,
) -> PairSignals:
    """A business's signals from its ties, blocked pairs and feedback (any touching it)."""
    signals = PairSignals()

    def exclude(other: str, until: float) -> None:
        signals.excluded_until[other] = max(signals.excluded_until.get(other, -FOREVER), until)

    for tie in ties:
        if business_id in (tie.a, tie.b):
            other = tie.b if tie.a == business_id else tie.a
            exclude(other, FOREVER)
            if tie.kind is TieKind.PARTNERS_WITH:
                signals.partners.add(other)
    for a, b in blocked:
        if business_id in (a, b):
            exclude(b if a == business_id else a, FOREVER)
    # Each salesperson's verdict on a pair counts once, however often it was repeated (its
    # latest time counts).
    accepted: dict[str, dict] = defaultdict(dict)
    rejected: dict[str, dict] = defaultdict(dict)
    for item in feedback:
        if business_id not in (item.a, item.b):
            continue
        other = item.b if item.a == business_id else item.a
        if item.kind is FeedbackKind.DISMISSED:
            if item.reason == DismissReason.BAD_TIMING:
                exclude(other, (item.at + timedelta(days=weights.bad_timing_days)).timestamp())
            else:
                exclude(other, FOREVER)
        elif item.kind in _INTRODUCED:
            exclude(other, FOREVER)  # introduced already: no need to suggest again
        verdicts = accepted if item.kind in _POSITIVE else rejected if _is_negative(item) else None
        if verdicts is not None:
            key = (item.salesperson_id, item.kind, item.reason)
            verdicts[other][key] = max(verdicts[other].get(key, item.at), item.at)
    # Older verdicts count less: half as much per `feedback_half_life_days` before the
    # business's latest one (measured from its own feedback, not the clock, so a list does
    # not drift while nothing happens).
    times = [at for side in (accepted, rejected) for by_key in side.values() for at in by_key.values()]
    newest = max(times, default=None)

    def weight(by_key: dict) -> float:
        days = [(newest - at).total_seconds() / 86400 for at in by_key.values()]
        return math.fsum(0.5 ** (d / weights.feedback_half_life_days) for d in sorted(days))

    for other in set(accepted) | set(rejected):
        signals.verdicts[other] = (weight(accepted[other]), weight(rejected[other]))
    return signals


def learned_factor(accepted: np.ndarray, rejected: np.ndarray, weights: Weights) -> np.ndarray:
    """How much a business's verdicts move its weight for a kind: 1 with no verdicts, shrunk
    toward 1 (the rules' weight) by `feedback_prior` pseudo-verdicts on each side."""
    w = weights
    factor = 2 * (accepted + w.feedback_prior) / (accepted + rejected + 2 * w.feedback_prior)
    return np.clip(factor, w.affinity_min, w.affinity_max)


class Eligibility:
    """Pair signals of every business in the book, by position."""

    def __init__(self, weights: Weights):
        self.weights = weights
        self.signals: dict[int, PairSignals] = {}
        # Positions of the excluded others, their times, partners and affinities: what scoring reads.
        self.excluded: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.partners: dict[int, set[int]] = {}
        self.affinity: dict[int, np.ndarray] = {}  # position -> factor per kind number

    def set(
        self,
        position: int,
        signals: PairSignals,
        position_of: Callable[[str], int | None],
        kind_of: Callable[[str], int | None],
        kinds: int,
    ) -> None:
        """Take in a business's signals, resolved against the book as it is: `position_of` and
        `kind_of` give an active business's position and kind number (None if not in the book)."""
        self.signals[position] = signals
        named = {*signals.excluded_until, *signals.partners}
        placed = {other: p for other in named if (p := position_of(other)) is not None}
        excluded = [(placed[o], until) for o, until in signals.excluded_until.items() if o in placed]
        if excluded:
            self.excluded[position] = (
                np.array([p for p, _ in excluded], dtype=np.int64),
                np.array([u for _, u in excluded], dtype=np.float64),
            )
        else:
            self.excluded.pop(position, None)
        partners = {placed[o] for o in signals.partners if o in placed}
        if partners:
            self.partners[position] = partners
        else:
            self.partners.pop(position, None)
        self.affinity.pop(position, None)
        if signals.verdicts:
            accepted, rejected = np.zeros(kinds), np.zeros(kinds)
            for other, (yes, no) in signals.verdicts.items():
                kind = kind_of(other)
                if kind is not None:
                    accepted[kind] += yes
                    rejected[kind] += no
            factor = learned_factor(accepted, rejected, self.weights)
            if (factor != 1.0).any():
                self.affinity[position] = factor

    def forget(self, position: int) -> None:
        self.signals.pop(position, None)
        self.excluded.pop(position, None)
        self.partners.pop(position, None)
        self.affinity.pop(position, None)

    def shared_partners(self, i: int, j: int) -> set[int]:
        return self.partners.get(i, set()) & self.partners.get(j, set())

    def expiring_between(self, start: float, end: float) -> set[int]:
        """Positions with a pair that becomes suggestible (or hidden again) between two times."""
        low, high = min(start, end), max(start, end)
        return {position for position, (_, until) in self.excluded.items() if np.any((until > low) & (until <= high))}
