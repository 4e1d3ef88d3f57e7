"""Plain-words reasons for a suggested pair, one list per side.

Each sentence names the business it is about, so a salesperson can forward it as is:
"Lakeside Venue can send Petal & Stem a steady stream of couples who have just booked
their wedding." The strongest signals come first.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from netweave.matching.engine import MatchData

MAX_SIGNALS = 3  # strongest signal sentences per side, then the kind explanation and the geography


@functools.lru_cache(maxsize=65536)
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
    similarity = np.einsum("ij,ij->i", data.matrix[mine][first], data.matrix[theirs][second])
    present = data.present[mine][first] & data.present[theirs][second]
    return np.where(present, np.clip((similarity - w.fit_floor) / w.fit_span, 0.0, 1.0), 0.0)


def _kind_phrase(data: MatchData, i: int) -> str | None:
    guess = data.guesses[i]
    name = data.businesses[i].record.name
    if guess.source == "inferred":
        return f"{name} reads like a {guess.kind} from its description ({guess.confidence:.0%} sure)."
    return None


def _side(data: MatchData, me: int, other: int, need: float, client: float, audience: float) -> list[str]:
    """Why `me` gains from meeting `other`, given the pair's embedding fits."""
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
    if client >= 0.3:
        reasons.append(
            (
                client * 0.7,
                _sentence(f"{mine.name} gains a client: {theirs.name} wants {snippet(theirs.needs, theirs.name)}"),
            )
        )
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


def pair_reasons(data: MatchData, pairs: list[tuple[int, int]]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """For each pair (i, j): (why i gains, why j gains)."""
    if not pairs:
        return []
    first = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
    second = np.fromiter((j for _, j in pairs), dtype=np.int64, count=len(pairs))
    need_ij = _pair_fits(data, first, second, "needs", "offers").tolist()
    need_ji = _pair_fits(data, second, first, "needs", "offers").tolist()
    audience = _pair_fits(data, first, second, "customers", "customers").tolist()
    return [
        (
            tuple(_side(data, i, j, need_ij[n], need_ji[n], audience[n])),
            tuple(_side(data, j, i, need_ji[n], need_ij[n], audience[n])),
        )
        for n, (i, j) in enumerate(pairs)
    ]
