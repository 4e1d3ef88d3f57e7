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

import numpy as np

from graph.records import (
    BusinessRecord,
    Feedback,
    GraphStats,
    InferredCategory,
    Salesperson,
    SalespersonSummary,
    StoredBusiness,
    Suggestion,
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
    def all_ties(self) -> list[Tie]:
        """Every tie in the graph, normalised."""

    @abstractmethod
    def do_not_introduce_pairs(self) -> set[tuple[str, str]]:
        """Every opted-out pair as (smaller id, larger id)."""

    @abstractmethod
    def stats(self) -> GraphStats: ...

    # Matching: embeddings, inferred categories, suggestions, feedback
    @abstractmethod
    def embedding_hashes(self, field: str, ids: Sequence[str] | None = None) -> dict[str, str]:
        """business id -> hash of the text its stored `field` vector was made from (all, or of `ids`)."""

    @abstractmethod
    def save_embeddings(self, field: str, items: Sequence[tuple[str, str, np.ndarray]]) -> None:
        """Store (business id, text hash, vector) for `field`, replacing older ones."""

    @abstractmethod
    def load_embeddings(self, field: str, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Business ids (all, or those of `ids` that have one) and their `field` vectors as one
        float32 matrix, rows in id order."""

    # Vector search: Neo4j answers from its vector indexes, the embedded store by an exact scan.
    has_vector_index = False

    def ensure_vector_indexes(self, dimensions: int) -> None:
        """Make sure each embedding field has a cosine vector index of `dimensions` (the model's);
        an index of other dimensions (the model changed) is rebuilt. No-op without indexes."""
        return None

    def nearest(self, field: str, vectors: np.ndarray, k: int) -> list[list[str]]:
        """For each query vector, ids of up to `k` businesses whose `field` vector is most
        similar (cosine), most similar first. Here an exact scan that reads every vector per
        call (fine for tools and tests); the matcher asks only stores with a vector index and
        estimates far candidates in memory otherwise."""
        ids, stored = self.load_embeddings(field)
        if not ids or not len(vectors):
            return [[] for _ in range(len(vectors))]
        similarity = np.asarray(vectors, dtype=np.float32) @ stored.T
        best = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        return [[ids[j] for j in row] for row in best.tolist()]

    @abstractmethod
    def save_inferred_categories(self, business_ids: Sequence[str], inferred: Sequence[InferredCategory]) -> None:
        """Replace the inferred categories of `business_ids` with `inferred` (given ones stay)."""

    @abstractmethod
    def inferred_categories(self) -> dict[str, list[InferredCategory]]:
        """business id -> its inferred categories, most confident first."""

    @abstractmethod
    def replace_suggestions(self, business_ids: Sequence[str], suggestions: Sequence[Suggestion]) -> None:
        """In one transaction: drop the suggestions of `business_ids`, store `suggestions`."""

    @abstractmethod
    def suggestions_for(self, business_id: str) -> list[Suggestion]:
        """The business's suggestions by rank."""

    @abstractmethod
    def businesses_suggesting(self, other_ids: Sequence[str]) -> set[str]:
        """Ids of businesses whose suggestions include any of `other_ids`."""

    @abstractmethod
    def all_suggestions(self) -> list[Suggestion]:
        """Every suggestion, by business id then rank."""

    @abstractmethod
    def record_feedback(self, feedback: Feedback) -> None:
        """Append feedback on a pair (an unknown business raises UnknownBusinessError)."""

    @abstractmethod
    def list_feedback(self) -> list[Feedback]:
        """All feedback, oldest first."""


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
