"""The graph store's place in the app's lifecycle: one store (one Neo4j driver) per app."""

from __future__ import annotations

import atexit

from flask import Flask, current_app

from graph import GraphStore, StoreSettings, open_store

_EXTENSION = "netweave.store"


def init_app(app: Flask) -> None:
    """Open the configured store and bring its schema up to date (idempotent)."""
    store = open_store(
        StoreSettings(
            url=app.config["GRAPH_URL"],
            user=app.config["NEO4J_USER"],
            password=app.config["NEO4J_PASSWORD"],
            database=app.config["NEO4J_DATABASE"],
        )
    )
    store.migrate()
    app.extensions[_EXTENSION] = store
    atexit.register(store.close)


def get_store() -> GraphStore:
    """The current app's store."""
    return current_app.extensions[_EXTENSION]
