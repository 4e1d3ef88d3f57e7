"""Liveness for load balancers and the test suite."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from netweave.store import get_store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    store = get_store()
    return jsonify(status="ok", backend=store.backend, businesses=store.count_businesses())
