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

from netweave.matching.rules import Rules
from netweave.matching.settings import Weights
from netweave.matching.vectors import cosine


@dataclass(frozen=True)
class KindGuess:
    kind: str | None
    confidence: float
    source: str  # "given", "inferred" or "none"


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

    def number(self, guess: KindGuess) -> int:
        return self.index.get(guess.kind, self.unknown) if guess.kind else self.unknown


def guess_kinds(
    categories: Sequence[Sequence[str]],
    offers: np.ndarray,
    prototypes: np.ndarray,
    scale: float,
    rules: Rules,
    weights: Weights,
) -> list[KindGuess]:
    """One guess per business: `categories` are the CRM's, `offers` the businesses' offer
    vectors and `prototypes` the kinds', both quantized with `scale`."""
    guesses: list[KindGuess] = []
    to_infer: list[int] = []
    for row, names in enumerate(categories):
        given = next((kind for name in names if (kind := rules.kind_for(name))), None)
        guesses.append(KindGuess(given, 1.0, "given") if given else NO_KIND)
        if not given:
            to_infer.append(row)
    if to_infer:
        similarity = cosine(offers[to_infer] @ prototypes.T, scale).astype(np.float64)
        logits = similarity / weights.infer_temperature
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        best = probabilities.argmax(axis=1)
        names = list(rules.kinds)
        for n, row in enumerate(to_infer):
            confidence = round(float(probabilities[n, best[n]]), 3)
            if confidence >= weights.infer_min_confidence:
                guesses[row] = KindGuess(names[best[n]], confidence, "inferred")
            else:
                guesses[row] = KindGuess(None, confidence, "none")
    return guesses
