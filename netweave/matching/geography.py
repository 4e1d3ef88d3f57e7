"""Markets and distances: which businesses are local to each other.

A business's market is its metro, else "city, region". Two markets are near when their
centres (the mean of their businesses' coordinates) are within `max_km`. A market's centre
is a function of the set of its members' coordinates alone (an exact sum, in name order
between markets), so it is the same however the book was loaded or patched.
"""

from __future__ import annotations

import math

import numpy as np

from graph.records import Place

EARTH_KM = 6371.0


def haversine(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle km between points (elementwise, broadcasting); NaN where a coordinate is missing."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2) - np.radians(lon1)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def market_of(place: Place | None) -> str | None:
    return place.market if place else None


class Geography:
    """Market numbers, centres and nearness. Matrices have one extra last row and column,
    never near anything, for "market unknown" (number -1)."""

    def __init__(self, max_km: float):
        self.max_km = max_km
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self._points: list[dict[int, tuple[float, float]]] = []  # per market: position -> (lat, lon)
        self.centres = np.zeros((0, 2))
        self.km = np.full((1, 1), np.nan)
        self.near = np.zeros((1, 1), dtype=bool)
        self._dirty: set[int] = set()

    def market(self, name: str | None) -> int:
        """The market's number, adding it if new; -1 for no market."""
        if name is None:
            return -1
        if name not in self.index:
            self.index[name] = len(self.names)
            self.names.append(name)
            self._points.append({})
            grow = len(self.names) + 1
            km, near = np.full((grow, grow), np.nan), np.zeros((grow, grow), dtype=bool)
            km[: grow - 2, : grow - 2] = self.km[:-1, :-1]
            near[: grow - 2, : grow - 2] = self.near[:-1, :-1]
            self.km, self.near = km, near
            self.centres = np.vstack([self.centres, [np.nan, np.nan]])
            self._dirty.add(self.index[name])
        return self.index[name]

    def place(self, position: int, market: int, coords: tuple[float, float] | None) -> None:
        """Record where the business at `position` is (call `forget` first if it moved)."""
        if market >= 0 and coords is not None:
            self._points[market][position] = coords
            self._dirty.add(market)

    def forget(self, position: int, market: int) -> None:
        if market >= 0 and self._points[market].pop(position, None) is not None:
            self._dirty.add(market)

    def update(self) -> set[int]:
        """Recompute what moved; returns the markets whose set of near markets changed."""
        dirty, self._dirty = self._dirty, set()
        for m in dirty:
            points = sorted(self._points[m].values())
            if points:
                self.centres[m] = (
                    math.fsum(p[0] for p in points) / len(points),
                    math.fsum(p[1] for p in points) / len(points),
                )
            else:
                self.centres[m] = (np.nan, np.nan)
        changed: set[int] = set()
        count = len(self.names)
        for m in sorted(dirty):
            others = np.arange(count)
            # Each pair is measured in name order, so its distance does not depend on which
            # of the two moved last.
            first = np.array([self.names[m] < self.names[o] for o in others.tolist()], dtype=bool)
            a = np.where(first[:, None], self.centres[m][None, :], self.centres[others])
            b = np.where(first[:, None], self.centres[others], self.centres[m][None, :])
            km = haversine(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
            near = km <= self.max_km
            near[m] = True
            changed.update(np.flatnonzero(near != self.near[m, :count]).tolist())
            if (near != self.near[m, :count]).any():
                changed.add(m)
            self.km[m, :count] = self.km[:count, m] = km
            self.km[m, m] = 0.0
            self.near[m, :count] = self.near[:count, m] = near
        return changed

    @staticmethod
    def distance_km(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float | None:
        """km between two businesses (in a fixed order, so the same both ways round)."""
        if a is None or b is None:
            return None
        (lat1, lon1), (lat2, lon2) = sorted((a, b))
        p1, p2 = math.radians(lat1), math.radians(lat2)
        h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
        return 2 * EARTH_KM * math.asin(math.sqrt(min(max(h, 0.0), 1.0)))
