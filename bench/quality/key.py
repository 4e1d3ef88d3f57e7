"""bench-quality's answer key: the books and their labels (no engine imports, so tests read it
cheaply). See `books/README.md` for how the labels are derived."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

BOOKS = Path(__file__).with_name("books")
METRO = {("Denver", "CO"): "Denver", ("Lakewood", "CO"): "Denver", ("Charlotte", "NC"): "Charlotte"}


@dataclass(frozen=True)
class Business:
    id: str
    name: str
    kind: str
    metro: str
    remote: bool
    fields: dict[str, str]  # the row as a CRM export would give it


@dataclass
class Truth:
    businesses: list[Business]
    good_kinds: set[frozenset[str]]
    competing_kinds: set[frozenset[str]]

    def __post_init__(self) -> None:
        self.by_id = {b.id: b for b in self.businesses}
        self.partners = {
            a.id: {b.id for b in self.businesses if b.id != a.id and self.is_good(a.id, b.id)} for a in self.businesses
        }

    def is_good(self, a: str, b: str) -> bool:
        x, y = self.by_id[a], self.by_id[b]
        pair = frozenset((x.kind, y.kind))
        return (
            x.kind != y.kind
            and pair not in self.competing_kinds
            and pair in self.good_kinds
            and (x.metro == y.metro or x.remote or y.remote)
        )

    def is_competitor(self, a: str, b: str) -> bool:
        x, y = self.by_id[a], self.by_id[b]
        return x.metro == y.metro and (x.kind == y.kind or frozenset((x.kind, y.kind)) in self.competing_kinds)


def load_truth(book: str, rounds: tuple[int, ...] = (1, 2)) -> Truth:
    """The book and its labels from the key's `rounds` (1: the first labeller's; 2: the second
    search). A contested pair (one source a sphere, another competitors) is never good."""
    key = yaml.safe_load((BOOKS / "spheres.yaml").read_text(encoding="utf-8"))

    def entries(section: str) -> list[dict]:
        return [entry for entry in key.get(section, []) if entry.get("round", 1) in rounds]

    good = {frozenset((a, b)) for s in entries("spheres") for a in s["kinds"] for b in s["kinds"] if a != b}
    competing = {frozenset(item["kinds"]) for item in entries("competing_kinds")}
    good -= {frozenset(item["kinds"]) for item in entries("contested_kinds")}
    rows = yaml.safe_load((BOOKS / f"{book}.yaml").read_text(encoding="utf-8"))["businesses"]
    businesses = []
    for row in rows:
        fields = {
            "id": row["id"], "name": row["name"], "salesperson": "eval@example.com", "city": row["city"],
            "region": row["region"], "description": row.get("description") or "",
            "customers": row.get("customers") or "", "needs": row.get("needs") or "",
            "categories": (row.get("industry") or "") if book == "notes" else row["kind"],
        }  # fmt: skip
        metro = METRO[(row["city"], row["region"])]
        businesses.append(Business(row["id"], row["name"], row["kind"], metro, bool(row.get("remote")), fields))
    return Truth(businesses, good, competing)
