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


def problem(response: Any, status: int) -> dict:
    """The answer's problem document, checked to be one (RFC 9457) with this status."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# A small book: Dana's florist and venue, Ken's barn (Maya manages the team).
DANA, KEN, MAYA = "dana@example.com", "ken@example.com", "maya@example.com"


def florist(business_id: str = "F1", **more) -> dict:
    return {
        "id": business_id, "name": "Petal & Stem", "salesperson": DANA, "salesperson_name": "Dana Reyes",
        "categories": "Florist", "description": "Wedding and event flowers", "customers": "engaged couples",
        "needs": "wedding venue referrals", "city": "Denver", "region": "CO", **more,
    }  # fmt: skip


VENUE = {
    "id": "V1", "name": "Lakeside Venue", "salesperson": DANA, "categories": "Wedding Venue",
    "description": "Lakeside wedding venue for 200 guests", "customers": "engaged couples",
    "needs": "florists and caterers", "city": "Lakewood", "region": "Colorado",
}  # fmt: skip
BARN = {
    "id": "V2", "name": "Summit Barn", "salesperson": KEN, "salesperson_name": "Ken Olson",
    "categories": "Wedding Venue", "description": "Barn venue for rustic weddings", "customers": "engaged couples",
    "needs": "florists", "city": "Denver", "region": "CO",
}  # fmt: skip
