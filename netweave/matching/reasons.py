"""Plain-words reasons for a suggested pair, one list per side.

Each sentence names the business it is about, so a salesperson can forward it as is:
"Lakeside Venue can send Petal & Stem a steady stream of couples who have just booked
their wedding." The strongest signals come first.
"""

from __future__ import annotations

import re

import numpy as np

from netweave.matching.engine import MatchData, _fit

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


def _kind_phrase(data: MatchData, i: int) -> str | None:
    guess = data.guesses[i]
    name = data.businesses[i].record.name
    if guess.source == "inferred":
        return f"{name} reads like a {guess.kind} from its description ({guess.confidence:.0%} sure)."
    return None


def _side(data: MatchData, me: int, other: int) -> list[str]:
    """Why `me` gains from meeting `other`."""
    w = data.settings.weights
    mine, theirs = data.businesses[me].record, data.businesses[other].record
    kind_me = data.guesses[me].kind
    kind_other = data.guesses[other].kind
    reasons: list[tuple[float, str]] = []

    relation = data.rules.relation(kind_me, kind_other)
    if relation and relation.gets:
        reasons.append((relation.weight, f"{theirs.name} can send {mine.name} {relation.gets}."))
    elif relation:
        reasons.append(
            (
                relation.weight,
                f"{theirs.name} ({kind_other}) and {mine.name} serve the same {relation.sphere} customers.",
            )
        )

    if data.present["needs"][me]:
        need = float(_fit(np.dot(data.matrix["needs"][me], data.matrix["offers"][other]), w))
        if need >= 0.3:
            reasons.append(
                (
                    need,
                    _sentence(
                        f"{mine.name} wants {snippet(mine.needs, mine.name)}; "
                        f"{theirs.name} offers {snippet(theirs.description, theirs.name)}"
                    ),
                )
            )
    if data.present["needs"][other]:
        client = float(_fit(np.dot(data.matrix["needs"][other], data.matrix["offers"][me]), w))
        if client >= 0.3:
            reasons.append(
                (
                    client * 0.7,
                    _sentence(f"{mine.name} gains a client: {theirs.name} wants {snippet(theirs.needs, theirs.name)}"),
                )
            )
    if data.present["customers"][me] and data.present["customers"][other]:
        audience = float(_fit(np.dot(data.matrix["customers"][me], data.matrix["customers"][other]), w))
        if audience >= 0.4:
            reasons.append((audience * 0.8, _sentence(f"Both serve {snippet(mine.customers, mine.name)}")))

    shared = sorted(data.businesses[p].record.name for p in data.shared_partners(me, other))
    if shared:
        reasons.append((0.95, f"Both already work with {', '.join(shared[:2])}."))

    ranked = [text for _, text in sorted(reasons, key=lambda item: -item[0])][:MAX_SIGNALS]
    if (phrase := _kind_phrase(data, other)) and relation:
        ranked.append(phrase)
    ranked.append(_where(data, me, other))
    return ranked


def _where(data: MatchData, me: int, other: int) -> str:
    mine, theirs = data.businesses[me].record, data.businesses[other].record
    if data.market[me] is not None and data.market[me] == data.market[other]:
        return f"Both are in the {data.market[me]} area."
    km = data.distance_km(me, other)
    if km is not None and km <= data.settings.max_km:
        return f"{km:.0f} km apart."
    remote = next(
        (name for i, name in ((other, theirs.name), (me, mine.name)) if data.rules.remote(data.guesses[i].kind)), None
    )
    return f"{remote} works with clients anywhere, so distance is no obstacle." if remote else "Different areas."


def pair_reasons(data: MatchData, i: int, j: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(why i gains, why j gains)."""
    return tuple(_side(data, i, j)), tuple(_side(data, j, i))
