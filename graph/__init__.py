"""The graph layer: the customer graph's records, its store contract and both backends."""

from graph.backends import open_store
from graph.records import (
    BusinessRecord,
    BusinessStatus,
    Category,
    GraphStats,
    OptOut,
    Place,
    Role,
    Salesperson,
    SalespersonSummary,
    StoredBusiness,
    Tie,
    TieKind,
    UpsertOutcome,
    slugify,
)
from graph.store import (
    GraphStore,
    GraphWriter,
    StoreSettings,
    UnknownBusinessError,
    UnknownJobError,
    UnknownSalespersonError,
)

__all__ = [
    "BusinessRecord",
    "BusinessStatus",
    "Category",
    "GraphStats",
    "GraphStore",
    "GraphWriter",
    "OptOut",
    "Place",
    "Role",
    "Salesperson",
    "SalespersonSummary",
    "StoreSettings",
    "StoredBusiness",
    "Tie",
    "TieKind",
    "UnknownBusinessError",
    "UnknownJobError",
    "UnknownSalespersonError",
    "UpsertOutcome",
    "open_store",
    "slugify",
]
