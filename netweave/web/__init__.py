"""Web layer: blueprints for the salesperson UI (and, next, the JSON API)."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from netweave.web import customers, health

    app.register_blueprint(health.bp)
    app.register_blueprint(customers.bp)
