"""Netweave: suggests mutually beneficial introductions between a salesperson's customers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, then `config` on top (tests pass theirs).

    `gunicorn "netweave:create_app()"` serves it; `flask --app app ...` runs its commands.
    """
    from netweave import cli, jobs, observability, store
    from netweave.config import settings_from_env
    from netweave.web import register_blueprints

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.from_mapping(settings_from_env())
    if config:
        app.config.from_mapping(config)
    observability.use_metrics_dir(app.config["METRICS_DIR"])
    observability.init_app(app)
    store.init_app(app)
    jobs.init_app(app)
    cli.init_app(app)
    register_blueprints(app)
    return app
