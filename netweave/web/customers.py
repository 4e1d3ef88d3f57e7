"""Browse accounts: a list with search (and, for a manager, a salesperson filter), one page
per account. A salesperson sees their own book; another book's account is a 404."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from graph import BusinessStatus
from netweave.services import matches
from netweave.services.access import NotAllowed, NotFound, business_for
from netweave.store import get_store
from netweave.web.auth import viewer

bp = Blueprint("customers", __name__)

PAGE_SIZE = 50


@bp.get("/customers")
@login_required
def index() -> ResponseReturnValue:
    store = get_store()
    search = request.args.get("q", "").strip()[:100] or None
    salesperson = request.args.get("salesperson") or None
    if not current_user.is_manager:
        salesperson = current_user.salesperson.id
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
        salespeople=store.list_salespeople() if current_user.is_manager else [],
        total=total,
        page=page,
        pages=pages,
        search=search or "",
        salesperson=salesperson or "",
        archived=archived,
    )


@bp.get("/customers/<path:business_id>")
@login_required
def detail(business_id: str) -> ResponseReturnValue:
    store = get_store()
    try:
        business = business_for(store, viewer(), business_id, active=False)
    except (NotFound, NotAllowed):
        abort(404)
    ties = [(tie, store.get_business(tie.b if tie.a == business_id else tie.a)) for tie in store.ties_of(business_id)]
    salesperson = store.get_salesperson(business.record.salesperson_id)
    suggestions = [] if business.archived_at else matches.suggestions_for_business(store, viewer(), business_id)
    return render_template(
        "customers/detail.html",
        business=business,
        ties=ties,
        salesperson=salesperson,
        suggestions=suggestions,
        generation=store.published_generation(),
    )
