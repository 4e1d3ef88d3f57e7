"""A full refresh split by market, so that more workers make it faster.

The worker that runs a full refresh (the *beginner*) embeds what changed and begins the
generation, then asks the queue for helpers: a helper (a `flask worker --helper` process, on
this machine or another) loads the book while the beginner loads its own. The beginner then
splits the rows into parts by market (a market is the unit of candidate generation: its rows
share their local candidates), records the parts in the store and ranks parts itself,
claiming them one at a time; the helpers claim parts too. Each part's lists are written into
the generation, each slice in one transaction with the renewal of the part's lease, so a
worker whose part was taken over (it stopped, or stalled past its lease) writes nothing more
of it; what it wrote before is replaced, list by list, by the new owner. A helper sends back
what its ranking saw of each row (pools, far candidates and their floors), which the
beginner installs in its book: after publishing, its book is exactly the one a refresh of
every row would have left, and changes are taken in incrementally as before.

Helpers must rank the very book the beginner loaded. Every change that can move a list is
recorded as pending in the same transaction, so the pending changes (ids and versions) tell
whether the store moved: the beginner records them, with a digest of its book's ids in
order, the time the lists are as of, and the model, rules and settings, as the parts'
*snapshot*. A helper that finds anything else leaves the parts to the beginner, which ranks
whatever no helper took; the lists are the same either way.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from graph.records import PendingChange

PART_LEASE_S = 120.0  # a part whose worker wrote nothing for this long is taken over


def pending_token(changes: Sequence[PendingChange]) -> str:
    """A digest of the pending changes: equal tokens, an unchanged store (for matching)."""
    text = "\n".join(sorted(f"{c.business_id}\t{c.version}" for c in changes))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def ids_digest(ids: Sequence[str]) -> str:
    """A digest of a book's ids in position order: equal digests, equal positions."""
    return hashlib.blake2b("\n".join(ids).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """What a split refresh's book was loaded from; a helper ranks only the very same book."""

    pending: str
    book: str
    now: datetime
    identity: dict[str, str]  # model, rules and settings digests

    def dumps(self) -> str:
        return json.dumps(
            {"pending": self.pending, "book": self.book, "now": self.now.isoformat(), "identity": self.identity},
            sort_keys=True,
        )

    @classmethod
    def loads(cls, text: str) -> Snapshot:
        data = json.loads(text)
        return cls(data["pending"], data["book"], datetime.fromisoformat(data["now"]), data["identity"])


def split_by_market(rows: np.ndarray, markets: np.ndarray, parts: int) -> list[np.ndarray]:
    """`rows` (with their `markets`) in up to `parts` parts of whole markets, as even in rows as
    can be: the largest markets first, each to the part with the fewest rows so far. The same
    rows always split the same way; empty parts are dropped. Each part keeps the rows' order."""
    found, counts = np.unique(markets, return_counts=True)
    loads = [0] * parts
    members: list[list[int]] = [[] for _ in range(parts)]
    for count, market in sorted(zip((-counts).tolist(), found.tolist(), strict=True)):
        emptiest = min(range(parts), key=lambda k: (loads[k], k))
        members[emptiest].append(market)
        loads[emptiest] -= count
    return [rows[np.isin(markets, chosen)] for chosen in members if chosen]


@dataclass(frozen=True)
class PartState:
    """What ranking a part's rows left in the book (see Book: pool, far candidates, floors),
    and how many lists and suggestions it wrote."""

    rows: np.ndarray
    pool: np.ndarray
    pool_floor: np.ndarray
    far_columns: np.ndarray
    far_floor: np.ndarray
    needs_floor: np.ndarray
    offers_floor: np.ndarray
    far_valid: np.ndarray
    lists: int
    suggestions: int

    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{name: np.asarray(value) for name, value in self.__dict__.items()})
        return buffer.getvalue()

    @classmethod
    def loads(cls, data: bytes) -> PartState:
        with np.load(io.BytesIO(data)) as arrays:
            values = {name: arrays[name] for name in arrays.files}
        return cls(**{**values, "lists": int(values["lists"]), "suggestions": int(values["suggestions"])})
