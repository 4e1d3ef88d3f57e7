"""What the engine knows of each business, as arrays indexed by a position in the book.

Positions are assigned as businesses arrive and never reused while the book is loaded:
an archived business's position is emptied (inactive), a new one is appended. Nothing
that decides a list depends on positions; ties are broken by `key`, a hash of the id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from graph.records import EMBEDDING_FIELDS, StoredBusiness
from netweave.matching.kinds import NO_KIND, KindGuess


def tiebreak_key(business_id: str) -> int:
    """A stable order between businesses of equal score, independent of the rest of the book."""
    return int.from_bytes(hashlib.blake2b(business_id.encode(), digest_size=8).digest(), "big", signed=True)


def has_text(business: StoredBusiness, field: str) -> bool:
    record = business.record
    return field == "offers" or bool(record.customers if field == "customers" else record.needs)


def coords_of(business: StoredBusiness) -> tuple[float, float] | None:
    place = business.record.place
    if place and place.lat is not None and place.lon is not None:
        return (place.lat, place.lon)
    return None


class Features:
    def __init__(self, dimensions: int, capacity: int = 64):
        self.dimensions = dimensions
        self.size = 0
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.businesses: list[StoredBusiness | None] = []
        self.guesses: list[KindGuess] = []
        self.coords: list[tuple[float, float] | None] = []
        self.owner_numbers: dict[str, int] = {}
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        def grown(array: np.ndarray | None, shape: tuple[int, ...], dtype: type, fill: object) -> np.ndarray:
            fresh = np.full(shape, fill, dtype=dtype)
            if array is not None:
                fresh[: self.size] = array[: self.size]
            return fresh

        old = getattr(self, "capacity", None)

        def get(name: str) -> np.ndarray | None:
            return getattr(self, name) if old else None

        self.capacity = capacity
        self.active = grown(get("active"), (capacity,), bool, False)
        self.key = grown(get("key"), (capacity,), np.int64, 0)
        self.owner = grown(get("owner"), (capacity,), np.int64, -1)
        self.opted_out = grown(get("opted_out"), (capacity,), bool, False)
        self.market = grown(get("market"), (capacity,), np.int64, -1)
        self.kind = grown(get("kind"), (capacity,), np.int64, 0)
        # The kinds whose competitors a business is kept from: its kind or suspected kind, and a runner-up.
        self.guard_kind = grown(get("guard_kind"), (capacity,), np.int64, 0)
        self.guard_kind2 = grown(get("guard_kind2"), (capacity,), np.int64, 0)
        # The square roots of how likely each of those two is (1 for a given kind): the rules'
        # term weighs a pair's readings by the geometric mean of both sides' probabilities.
        self.guard_root = grown(get("guard_root"), (capacity,), np.float32, 0.0)
        self.guard_root2 = grown(get("guard_root2"), (capacity,), np.float32, 0.0)
        self.confidence = grown(get("confidence"), (capacity,), np.float32, 0.0)
        self.remote = grown(get("remote"), (capacity,), bool, False)
        old_vectors = self.vectors if old else {}
        old_present = self.present if old else {}
        self.vectors = {
            name: grown(old_vectors.get(name), (capacity, self.dimensions), np.float32, 0.0)
            for name in EMBEDDING_FIELDS
        }
        self.present = {name: grown(old_present.get(name), (capacity,), bool, False) for name in EMBEDDING_FIELDS}

    def reserve(self, count: int) -> None:
        """Room for `count` more businesses without regrowing (a whole book at load)."""
        if self.size + count > self.capacity:
            self._allocate(self.size + count + max(64, count // 50))

    def position(self, business_id: str) -> int:
        """The business's position, appending it if new."""
        if business_id in self.index:
            return self.index[business_id]
        if self.size == self.capacity:
            self._allocate(self.capacity * 2)
        position = self.size
        self.size += 1
        self.ids.append(business_id)
        self.index[business_id] = position
        self.businesses.append(None)
        self.guesses.append(NO_KIND)
        self.coords.append(None)
        self.key[position] = tiebreak_key(business_id)
        return position

    def owner_number(self, salesperson_id: str) -> int:
        return self.owner_numbers.setdefault(salesperson_id, len(self.owner_numbers))

    def active_positions(self) -> np.ndarray:
        return np.flatnonzero(self.active[: self.size])

    def set_vectors(self, field: str, positions: Sequence[int], vectors: np.ndarray) -> None:
        """Quantized vectors of the businesses at `positions` (rows of `vectors`); one whose
        text is not present (see `present`) keeps none (zeros), whatever the store still holds."""
        if not len(positions):
            return
        positions = np.asarray(positions, dtype=np.int64)
        self.vectors[field][positions] = vectors
        self.vectors[field][positions[~self.present[field][positions]]] = 0.0
