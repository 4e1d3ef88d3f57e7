"""Test helpers for the JSON API: a Flask test client that carries one token, and tokens made
through the service (as the CLI makes them)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from graph import GraphStore
from graph.records import TokenScope
from netweave.services import tokens
from netweave.services.access import Viewer


class Api:
    """A client that carries one token: `api.get("/businesses")` asks for /api/v1/businesses."""

    def __init__(self, client: FlaskClient, secret: str | None):
        self.client = client
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def __getattr__(self, method: str) -> Any:
        def call(path: str, **kwargs: Any) -> Any:
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return getattr(self.client, method)(f"/api/v1{path}", headers=headers, **kwargs)

        return call


def token(store: GraphStore, *scopes: TokenScope, salesperson: str | None = None) -> str:
    """A new token's secret."""
    return tokens.create_token(store, Viewer.system(), "test", scopes, salesperson_id=salesperson).secret
