"""Web layer: blueprints for the salesperson UI and the JSON API (`api`, under /api/v1)."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from netweave.web import api, customers, health

    app.register_blueprint(health.bp)
    app.register_blueprint(customers.bp)
    api.init_app(app)
