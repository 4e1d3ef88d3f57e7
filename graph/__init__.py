"""The graph layer: the customer graph's records, its store contract and both backends."""

from graph.records import (
    BusinessRecord,
    Category,
    GraphStats,
    Place,
    Salesperson,
    SalespersonSummary,
    StoredBusiness,
    Tie,
    TieKind,
    UpsertOutcome,
    slugify,
)
from graph.store import GraphStore, StoreSettings, UnknownBusinessError, open_store

__all__ = [
    "BusinessRecord",
    "Category",
    "GraphStats",
    "GraphStore",
    "Place",
    "Salesperson",
    "SalespersonSummary",
    "StoreSettings",
    "StoredBusiness",
    "Tie",
    "TieKind",
    "UnknownBusinessError",
    "UpsertOutcome",
    "open_store",
    "slugify",
]
