"""The graph store contract and the factory that picks a backend from a URL.

Everything above this layer (import, matching, web, digest) talks to a
`GraphStore`; `tests/contract` runs one suite against every implementation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from graph.records import (
    BusinessRecord,
    GraphStats,
    Salesperson,
    SalespersonSummary,
    StoredBusiness,
    Tie,
    UpsertOutcome,
)

NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


class UnknownBusinessError(LookupError):
    """A write named a business id that is not in the graph."""

    def __init__(self, ids: Sequence[str]):
        self.ids = sorted(set(ids))
        super().__init__("unknown business id(s): " + ", ".join(self.ids))


@dataclass(frozen=True)
class StoreSettings:
    url: str
    user: str = "neo4j"
    password: str = ""
    database: str = "neo4j"


class GraphStore(ABC):
    """Customer graph: salespeople, businesses, categories, places and ties."""

    backend: str

    @abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending schema migrations idempotently; return the names applied now."""

    @abstractmethod
    def applied_migrations(self) -> list[str]:
        """Names of all migrations applied so far, in order."""

    @abstractmethod
    def close(self) -> None: ...

    # Salespeople
    @abstractmethod
    def upsert_salespeople(self, people: Sequence[Salesperson]) -> None:
        """Create or update salespeople by id."""

    @abstractmethod
    def list_salespeople(self) -> list[SalespersonSummary]:
        """All salespeople with how many businesses each manages, by name."""

    # Businesses
    @abstractmethod
    def upsert_businesses(self, records: Sequence[BusinessRecord], now: datetime) -> list[UpsertOutcome]:
        """Write the records in one transaction, keyed by external id.

        Returns one outcome per record, in order. Unchanged records (same content
        hash) are not touched, so re-running an import writes nothing. Unknown
        salespeople referenced by a record are created with their id as name.
        """

    @abstractmethod
    def get_business(self, business_id: str) -> StoredBusiness | None: ...

    @abstractmethod
    def list_businesses(
        self,
        *,
        salesperson_id: str | None = None,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[StoredBusiness]:
        """Businesses ordered by name, then id; `search` is a case-insensitive part of the name."""

    @abstractmethod
    def count_businesses(self, *, salesperson_id: str | None = None, search: str | None = None) -> int: ...

    # Ties and opt-outs
    @abstractmethod
    def add_ties(self, ties: Sequence[Tie], now: datetime) -> int:
        """Record existing ties (undirected, idempotent); return how many were new.

        Raises UnknownBusinessError, writing nothing, if any id is not stored.
        """

    @abstractmethod
    def ties_of(self, business_id: str) -> list[Tie]:
        """The business's ties, normalised (smaller id first), sorted."""

    @abstractmethod
    def add_do_not_introduce(self, a: str, b: str, reason: str, now: datetime) -> bool:
        """Opt a pair out of introductions; True if it was not opted out before."""

    @abstractmethod
    def is_do_not_introduce(self, a: str, b: str) -> bool: ...

    @abstractmethod
    def stats(self) -> GraphStats: ...


def open_store(settings: StoreSettings) -> GraphStore:
    """A store for `settings.url`: a Neo4j URL, or a file path for the embedded store."""
    url = settings.url.strip()
    if url.startswith(NEO4J_SCHEMES):
        from graph.neo4j_store import Neo4jStore

        return Neo4jStore(url, (settings.user, settings.password), settings.database)
    path = url.removeprefix("sqlite:///").removeprefix("file:")
    if "://" in path:
        raise ValueError(
            f"NETWEAVE_GRAPH_URL={settings.url!r}: use a neo4j:// or bolt:// URL, or a file path for the embedded store"
        )
    from graph.embedded_store import EmbeddedStore

    return EmbeddedStore(Path(path))
