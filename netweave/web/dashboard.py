"""The loyalty dashboard: introductions per week, acceptance, business won, and the customers
who have received nothing in 90 days (services.loyalty). A manager sees the team or one book."""

from __future__ import annotations

import json

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from netweave.services import loyalty
from netweave.store import get_store
from netweave.web.auth import viewer

bp = Blueprint("dashboard", __name__)


@bp.get("/dashboard")
@login_required
def index() -> ResponseReturnValue:
    store = get_store()
    books = store.list_salespeople() if current_user.is_manager else []
    wanted = request.args.get("book", "")
    if not current_user.is_manager:
        book: str | None = current_user.salesperson.id
    else:  # the team unless a known book is asked for
        book = wanted if wanted in {s.salesperson.id for s in books} else None
    figures = loyalty.loyalty(store, viewer(), book)
    chart = json.dumps({
        "labels": [f"{w.starts:%b} {w.starts.day}" for w in figures.weeks],
        "made": [w.made for w in figures.weeks], "accepted": [w.accepted for w in figures.weeks],
    })  # fmt: skip
    return render_template("dashboard.html", figures=figures, chart=chart, books=books, book=book)
