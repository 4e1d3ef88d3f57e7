"""Plain-words reasons for a suggested pair, one list per side.

Each sentence names the business it is about, so a salesperson can forward it as is:
"Lakeside Venue can send Petal & Stem a steady stream of couples who have just booked
their wedding." The strongest signals come first.
"""

from __future__ import annotations

import re

import numpy as np

from netweave.matching.engine import MatchData

MAX_SIGNALS = 3  # strongest signal sentences per side, then the kind explanation and the geography


def snippet(text: str, name: str = "", limit: int = 90) -> str:
    """The first clause of a CRM note, trimmed at a word, without a leading 'Name:'."""
    text = " ".join(text.split())
    if name and text.lower().startswith(name.lower() + ":"):
        text = text[len(name) + 1 :].strip()
    first = re.split(r"(?<=[.;!?])\s|\s[-–—]{1,2}\s", text, maxsplit=1)[0].rstrip(".;!? ")
    if len(first) > limit:
        first = first[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    word = first.split(" ", 1)[0]
    if word[:1].isupper() and word[1:].islower() and word.lower() not in name.lower():
        first = first[0].lower() + first[1:]  # mid-sentence now: "offers custom floral design"
    return first


def _sentence(text: str) -> str:
    return text if text.endswith(("…", ".", "!", "?")) else text + "."


def _pair_fits(data: MatchData, first: np.ndarray, second: np.ndarray, mine: str, theirs: str) -> np.ndarray:
    """fit(first.mine . second.theirs) for many pairs at once; 0 where a text is missing."""
    w = data.settings.weights
    similarity = np.einsum("ij,ij->i", data.vectors(mine, first), data.vectors(theirs, second))
    present = data.present[mine][first] & data.present[theirs][second]
    return np.where(present, np.clip((similarity - w.fit_floor) / w.fit_span, 0.0, 1.0), 0.0)


class _Explainer:
    """Builds the sentences for one batch of pairs; each business's snippets are cut once."""

    def __init__(self, data: MatchData):
        self.data = data
        self.snippets: dict[int, tuple[str, str, str]] = {}

    def _snippets(self, i: int) -> tuple[str, str, str]:
        """(offers, needs, customers) snippets of business i."""
        if (cut := self.snippets.get(i)) is None:
            record = self.data.businesses[i].record
            cut = tuple(snippet(text, record.name) for text in (record.description, record.needs, record.customers))
            self.snippets[i] = cut
        return cut

    def _kind_phrase(self, i: int) -> str | None:
        guess = self.data.guesses[i]
        if guess.source == "inferred":
            name = self.data.businesses[i].record.name
            return f"{name} reads like a {guess.kind} from its description ({guess.confidence:.0%} sure)."
        return None

    def side(self, me: int, other: int, need: float, client: float, audience: float) -> tuple[str, ...]:
        """Why `me` gains from meeting `other`, given the pair's embedding fits."""
        data = self.data
        mine, theirs = data.businesses[me].record.name, data.businesses[other].record.name
        kind_other = data.guesses[other].kind
        reasons: list[tuple[float, str]] = []

        relation = data.rules.relation(data.guesses[me].kind, kind_other)
        if relation and relation.gets:
            reasons.append((relation.weight, f"{theirs} can send {mine} {relation.gets}."))
        elif relation:
            reasons.append(
                (relation.weight, f"{theirs} ({kind_other}) and {mine} serve the same {relation.sphere} customers.")
            )

        if need >= 0.3:
            wants, offers = self._snippets(me)[1], self._snippets(other)[0]
            reasons.append((need, _sentence(f"{mine} wants {wants}; {theirs} offers {offers}")))
        if client >= 0.3:
            wants = self._snippets(other)[1]
            reasons.append((client * 0.7, _sentence(f"{mine} gains a client: {theirs} wants {wants}")))
        if audience >= 0.4:
            reasons.append((audience * 0.8, _sentence(f"Both serve {self._snippets(me)[2]}")))

        if me in data.partners and (shared := data.shared_partners(me, other)):
            names = sorted(data.businesses[p].record.name for p in shared)
            reasons.append((0.95, f"Both already work with {', '.join(names[:2])}."))

        reasons.sort(key=_strength)
        ranked = [text for _, text in reasons[:MAX_SIGNALS]]
        if relation and (phrase := self._kind_phrase(other)):
            ranked.append(phrase)
        ranked.append(self._where(me, other))
        return tuple(ranked)

    def _where(self, me: int, other: int) -> str:
        data = self.data
        if data.market[me] is not None and data.market[me] == data.market[other]:
            return f"Both are in the {data.market[me]} area."
        km = data.distance_km(me, other)
        if km is not None and km <= data.settings.max_km:
            return f"{km:.0f} km apart."
        remote = next((i for i in (other, me) if data.rules.remote(data.guesses[i].kind)), None)
        if remote is None:
            return "Different areas."
        return f"{data.businesses[remote].record.name} works with clients anywhere, so distance is no obstacle."


def _strength(reason: tuple[float, str]) -> float:
    return -reason[0]


def pair_reasons(data: MatchData, pairs: list[tuple[int, int]]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """For each pair (i, j): (why i gains, why j gains)."""
    if not pairs:
        return []
    first = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
    second = np.fromiter((j for _, j in pairs), dtype=np.int64, count=len(pairs))
    need_ij = _pair_fits(data, first, second, "needs", "offers").tolist()
    need_ji = _pair_fits(data, second, first, "needs", "offers").tolist()
    audience = _pair_fits(data, first, second, "customers", "customers").tolist()
    explain = _Explainer(data)
    return [
        (
            explain.side(i, j, need_ij[n], need_ji[n], audience[n]),
            explain.side(j, i, need_ji[n], need_ij[n], audience[n]),
        )
        for n, (i, j) in enumerate(pairs)
    ]
