"""Pick a backend from a URL. Kept apart from the contract so that `graph.store` imports no
backend and no backend imports this module (no import cycle)."""

from __future__ import annotations

from pathlib import Path

from graph.store import GraphStore, StoreSettings

NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


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
