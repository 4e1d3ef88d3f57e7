"""Kinds of business: the rules as lookup tables, and each business's kind, given or inferred.

A business's kind is the first of its CRM categories that the rules know; failing that it
is inferred from its offer text (its vector against each kind's prototype text), with a
confidence that the reasons mention. A kind of its own per business, from its own data
only, so that changing one business never changes another's kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graph.records import BusinessRecord
from netweave.matching.notes import fragments
from netweave.matching.rules import Rules
from netweave.matching.settings import Weights
from netweave.matching.vectors import cosine


@dataclass(frozen=True)
class KindGuess:
    kind: str | None
    confidence: float
    source: str  # "given", "inferred" or "none"
    # The nearest kinds even when too unsure to use them: still enough to keep competitors
    # apart. The runner-up counts when it is at least `guard_runner_up_from` likely.
    suspected: str | None = None
    runner_up: str | None = None
    runner_up_confidence: float = 0.0


NO_KIND = KindGuess(None, 0.0, "none")


class KindTable:
    """The rules as arrays indexed by kind number; the last number stands for "kind unknown"."""

    def __init__(self, rules: Rules):
        self.rules = rules
        self.names = list(rules.kinds)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.unknown = len(self.names)
        k = self.unknown + 1
        self.relation_weight = np.zeros((k, k), dtype=np.float32)
        self.competing = np.zeros((k, k), dtype=bool)
        self.remote = np.zeros(k, dtype=bool)
        for a, name_a in enumerate(self.names):
            self.remote[a] = rules.remote(name_a)
            for b, name_b in enumerate(self.names):
                relation = rules.relation(name_a, name_b)
                self.relation_weight[a, b] = relation.weight if relation else 0.0
                self.competing[a, b] = rules.competitors(name_a, name_b)
        # Kinds that may meet at all: the rules relate them one way or the other.
        self.related = (self.relation_weight > 0) | (self.relation_weight.T > 0)
        self.related[self.unknown, :] = self.related[:, self.unknown] = False
        # 1 where the rules know both kinds and relate them in no way (an unknown kind is neither).
        self.unrelated = (~self.related).astype(np.float32)
        self.unrelated[self.unknown, :] = self.unrelated[:, self.unknown] = 0.0

    def number(self, guess: KindGuess) -> int:
        return self.index.get(guess.kind, self.unknown) if guess.kind else self.unknown

    def suspected_numbers(self, guess: KindGuess) -> tuple[int, int]:
        return tuple(self.index.get(k, self.unknown) if k else self.unknown for k in (guess.suspected, guess.runner_up))


def named_kinds(record: BusinessRecord) -> tuple[str, ...]:
    """What a business's record says it is: its CRM categories, then the short pieces of its
    description (a kind among them is taken as given; an industry narrows inference)."""
    return (*record.categories, *fragments(record.description))


def guess_kinds(
    categories: Sequence[Sequence[str]],
    offers: np.ndarray,
    prototypes: np.ndarray,
    scale: float,
    rules: Rules,
    weights: Weights,
) -> list[KindGuess]:
    """One guess per business: `categories` are the CRM's, `offers` the businesses' offer
    vectors and `prototypes` the vectors of `rules.prototypes`, both quantized with `scale`."""
    guesses: list[KindGuess] = []
    to_infer: list[int] = []
    names = list(rules.kinds)
    number = {name: n for n, name in enumerate(names)}
    prior_rows: list[np.ndarray] = []
    for row, given_names in enumerate(categories):
        given = rules.first_kind(given_names)
        guesses.append(KindGuess(given, 1.0, "given", given) if given else NO_KIND)
        if not given:
            to_infer.append(row)
            # A coarse industry ("Retail") narrows the kinds a business is likely to be; a name
            # several kinds share ("Attorney") narrows them to those kinds.
            prior = np.zeros(len(names))
            filed = set().union(*(rules.industry_kinds(name) for name in given_names))
            for narrowed, odds in (
                (filed, weights.infer_outside_industry),
                (rules.family(given_names), weights.infer_outside_family),
            ):
                if narrowed:
                    outside = np.ones(len(names), dtype=bool)
                    outside[[number[kind] for kind in narrowed]] = False
                    prior[outside] += np.log(odds)
            prior_rows.append(prior)
    if to_infer:
        similarity = cosine(offers[to_infer] @ prototypes.T, scale)
        similarity = np.maximum.reduceat(similarity, rules.prototype_starts, axis=1).astype(np.float64)  # a kind's best
        logits = similarity / weights.infer_temperature + np.array(prior_rows)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :2]
        for n, row in enumerate(to_infer):
            best, second = ranked[n].tolist()
            confidence = round(float(probabilities[n, best]), 3)
            nearest = names[best]
            second_confidence = round(float(probabilities[n, second]), 3)
            runner_up = names[second] if second_confidence >= weights.guard_runner_up_from else None
            second_confidence = second_confidence if runner_up else 0.0
            if confidence >= weights.infer_min_confidence:
                guesses[row] = KindGuess(nearest, confidence, "inferred", nearest, runner_up, second_confidence)
            else:
                guesses[row] = KindGuess(None, confidence, "none", nearest, runner_up, second_confidence)
    return guesses
