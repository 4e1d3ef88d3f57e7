"""Browse the customer book: list with search and salesperson filter, one page per customer.

There is no sign-in yet (the salesperson web app adds it), so these pages act as the system:
every book. They read through the same service functions the other surfaces use.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue

from graph import BusinessStatus
from netweave.services import matches
from netweave.services.access import Viewer
from netweave.store import get_store

bp = Blueprint("customers", __name__)

PAGE_SIZE = 50


@bp.get("/")
def index() -> ResponseReturnValue:
    store = get_store()
    search = request.args.get("q", "").strip() or None
    salesperson = request.args.get("salesperson") or None
    archived = request.args.get("archived") == "1"
    status = BusinessStatus.ARCHIVED if archived else BusinessStatus.ACTIVE
    total = store.count_businesses(salesperson_id=salesperson, search=search, status=status)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(max(request.args.get("page", 1, type=int), 1), pages)  # a page past the end shows the last
    businesses = store.list_businesses(
        salesperson_id=salesperson, search=search, status=status, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    return render_template(
        "customers/index.html",
        businesses=businesses,
        salespeople=store.list_salespeople(),
        total=total,
        page=page,
        pages=pages,
        search=search or "",
        salesperson=salesperson or "",
        archived=archived,
    )


@bp.get("/customers/<path:business_id>")
def detail(business_id: str) -> ResponseReturnValue:
    store = get_store()
    business = store.get_business(business_id)
    if business is None:
        abort(404)
    ties = [(tie, store.get_business(tie.b if tie.a == business_id else tie.a)) for tie in store.ties_of(business_id)]
    salesperson = store.get_salesperson(business.record.salesperson_id)
    suggestions = [] if business.archived_at else matches.suggestions_for_business(store, Viewer.system(), business_id)
    return render_template(
        "customers/detail.html",
        business=business,
        ties=ties,
        salesperson=salesperson,
        suggestions=suggestions,
        generation=store.published_generation(),
    )
