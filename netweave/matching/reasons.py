"""Plain-words reasons for a suggested pair, one list per side.

Each sentence names the business it is about, so a salesperson can forward it as is:
"Lakeside Venue can send Petal & Stem a steady stream of couples who have just booked
their wedding." The strongest signals come first.
"""

from __future__ import annotations

import re

import numpy as np

from graph.records import BusinessRecord
from netweave.matching.book import Book
from netweave.matching.notes import about_business
from netweave.matching.rules import Relation
from netweave.matching.vectors import cosine


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


def _pair_fits(book: Book, first: np.ndarray, second: np.ndarray, mine: str, theirs: str) -> np.ndarray:
    """fit(first.mine . second.theirs) for many pairs at once; 0 where a text is missing."""
    w, f = book.weights, book.f
    similarity = cosine(np.einsum("ij,ij->i", f.vectors[mine][first], f.vectors[theirs][second]), book.scale)
    present = f.present[mine][first] & f.present[theirs][second]
    return np.where(present, np.clip((similarity - w.fit_floor) / w.fit_span, 0.0, 1.0), 0.0)


class _Explainer:
    """Builds the sentences for one batch of pairs; each business's snippets are cut once."""

    def __init__(self, book: Book):
        self.book = book
        self.f = book.f
        self.w = book.weights
        self.snippets: dict[int, tuple[str, str, str]] = {}
        self.names: dict[int, str] = {}

    def _record(self, i: int) -> BusinessRecord:
        business = self.f.businesses[i]
        assert business is not None
        return business.record

    def _name(self, i: int) -> str:
        if (name := self.names.get(i)) is None:
            name = self.names[i] = self._record(i).name
        return name

    def _snippets(self, i: int) -> tuple[str, str, str]:
        """(offers, needs, customers) snippets of business i."""
        if (cut := self.snippets.get(i)) is None:
            record = self._record(i)
            texts = (about_business(record.description), record.needs, record.customers)
            cut = tuple(snippet(text, record.name) for text in texts)
            self.snippets[i] = cut
        return cut

    def _kind_phrase(self, i: int, kind: str, likely: float) -> str | None:
        """How sure the kind a reason rests on is, unless the CRM gave it."""
        guess, name = self.f.guesses[i], self._name(i)
        if kind != guess.kind:  # a runner-up, or a kind too unsure to show
            return f"{name} may be {_a(kind)} ({likely:.0%} likely)."
        if guess.source == "inferred":
            return f"{name} reads like {_a(kind)} from its description ({likely:.0%} sure)."
        return None

    def _readings(self, i: int) -> list[tuple[str, float]]:
        """The kinds the rules' term reads a business as, with their probabilities."""
        guess = self.f.guesses[i]
        if not guess.suspected:
            return []
        top = (guess.suspected, 1.0 if guess.source == "given" else guess.confidence)
        return [top, (guess.runner_up, guess.runner_up_confidence)] if guess.runner_up else [top]

    def _relation(self, me: int, other: int) -> tuple[Relation | None, tuple[str, float], tuple[str, float]]:
        """The reading of both sides the score rests on (as `Scorer._rule` takes it: both
        likeliest kinds, or one side's runner-up, whichever the rules relate best once weighed
        by both probabilities), and how the rules relate `me` to `other` under it."""
        rules, mine, theirs = self.book.rules, self._readings(me), self._readings(other)
        if not mine or not theirs:
            return None, ("", 0.0), ("", 0.0)
        best: tuple[float, Relation | None, tuple[str, float], tuple[str, float]] = (0.0, None, mine[0], theirs[0])
        for a, b in [(mine[0], theirs[0]), *((m, theirs[0]) for m in mine[1:]), *((mine[0], t) for t in theirs[1:])]:
            relation = rules.relation(a[0], b[0])
            if relation and (weight := relation.weight * (a[1] * b[1]) ** 0.5) > best[0]:
                best = (weight, relation, a, b)
        return best[1], best[2], best[3]

    def side(self, me: int, other: int, need: float, client: float, audience: float) -> tuple[str, ...]:
        """Why `me` gains from meeting `other`, given the pair's embedding fits."""
        f, w = self.f, self.w
        mine, theirs = self._name(me), self._name(other)
        relation, (kind_me, likely_me), (kind_other, likely_other) = self._relation(me, other)
        reasons: list[tuple[float, str]] = []
        if relation and relation.gets:
            reasons.append((relation.weight, f"{theirs} can send {mine} {relation.gets}."))
        elif relation:
            reasons.append(
                (relation.weight, f"{theirs} ({kind_other}) and {mine} serve the same {relation.sphere} customers.")
            )

        if need >= w.reason_need_from:
            wants, offers = self._snippets(me)[1], self._snippets(other)[0]
            reasons.append((need, _sentence(f"{mine} wants {wants}; {theirs} offers {offers}")))
        if client >= w.reason_client_from:
            wants = self._snippets(other)[1]
            strength = client * w.reason_client_strength
            reasons.append((strength, _sentence(f"{mine} gains a client: {theirs} wants {wants}")))
        if audience >= w.reason_audience_from:
            reasons.append((audience * w.reason_audience_strength, _sentence(f"Both serve {self._snippets(me)[2]}")))

        if shared := self.book.elig.shared_partners(me, other):
            # A partner is named only to the salesperson who manages it (and both sides).
            owner = self.book.f.owner
            names = sorted(self._name(p) for p in shared if owner[p] == owner[me] == owner[other])
            common = ", ".join(names[:2]) if names else "a partner in common"
            reasons.append((w.reason_shared_partner_strength, f"Both already work with {common}."))

        reasons.sort(key=_strength)
        ranked = [text for _, text in reasons[: w.reason_max_signals]]
        if relation:
            # The other's kind when it was inferred; one's own only when the reason rests on a
            # kind other than the one shown for it.
            phrases = [self._kind_phrase(other, kind_other, likely_other)]
            if kind_me != f.guesses[me].kind:
                phrases.append(self._kind_phrase(me, kind_me, likely_me))
            ranked.extend(phrase for phrase in phrases if phrase)
        ranked.append(self._where(me, other))
        return tuple(ranked)

    def _where(self, me: int, other: int) -> str:
        f, geo = self.f, self.book.geo
        market = int(f.market[me])
        if market >= 0 and market == f.market[other]:
            return f"Both are in the {geo.names[market]} area."
        km = geo.distance_km(f.coords[me], f.coords[other])
        if km is not None and km <= self.book.settings.max_km:
            return f"{km:.0f} km apart."
        remote = next((i for i in (other, me) if self.book.rules.remote(f.guesses[i].kind)), None)
        if remote is None:
            return "Different areas."
        return f"{self._name(remote)} works with clients anywhere, so distance is no obstacle."


def _a(kind: str) -> str:
    return f"{'an' if kind[:1].upper() in 'AEIOU' else 'a'} {kind}"


def _strength(reason: tuple[float, str]) -> float:
    return -reason[0]


def pair_reasons(book: Book, pairs: list[tuple[int, int]]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """For each pair (i, j) of positions in the book: (why i gains, why j gains).

    A pair and its reverse (j in i's list, i in j's) are explained once: the two sides swap.
    """
    if not pairs:
        return []
    explained: dict[tuple[int, int], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    todo = [
        pair
        for pair in dict.fromkeys(pairs)
        if (pair[1], pair[0]) not in explained and not explained.setdefault(pair, ())
    ]
    first = np.fromiter((i for i, _ in todo), dtype=np.int64, count=len(todo))
    second = np.fromiter((j for _, j in todo), dtype=np.int64, count=len(todo))
    need_ij = _pair_fits(book, first, second, "needs", "offers").tolist()
    need_ji = _pair_fits(book, second, first, "needs", "offers").tolist()
    audience = _pair_fits(book, first, second, "customers", "customers").tolist()
    explain = _Explainer(book)
    explained = {
        (i, j): (
            explain.side(i, j, need_ij[n], need_ji[n], audience[n]),
            explain.side(j, i, need_ji[n], need_ij[n], audience[n]),
        )
        for n, (i, j) in enumerate(todo)
    }
    return [explained[(i, j)] if (i, j) in explained else explained[(j, i)][::-1] for i, j in pairs]


def distinguish(book: Book, me: int, others: list[int], reasons: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """One business's list of reasons (why `me` gains from each of `others`) made to differ:
    where one would read like an earlier one but for the other's name (two massage therapists
    sent for the same reason), it also says what that business offers, then whom it serves."""
    explain = _Explainer(book)
    seen: set[frozenset[str]] = set()  # the sentences of each, in any order, the other's name blanked
    distinct = []
    for other, mine in zip(others, reasons, strict=True):
        name = explain._name(other)
        offers, _, customers = explain._snippets(other)
        extras = [
            _sentence(f"{name}: {offers}") if offers else None,
            _sentence(f"{name} serves {customers}") if customers else None,
        ]
        for extra in [None, *filter(None, extras)]:
            if extra is not None:
                mine = (*mine[:-1], extra, mine[-1])
            shape = frozenset(sentence.replace(name, "\0") for sentence in mine)
            if shape not in seen:
                break
        seen.add(shape)
        distinct.append(mine)
    return distinct
