"""Browse accounts: a list with search (and, for a manager, a salesperson filter), one page
per account. A salesperson sees their own book; another book's account is a 404."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from graph import BusinessStatus
from netweave.services import introductions, matches, network
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
    ledger = introductions.ledger(store, viewer(), business_id)
    others = {b.id: b.record.name for b in store.get_businesses(
        sorted({i.b_id if i.a_id == business_id else i.a_id for i in ledger.introductions})).values()}  # fmt: skip
    return render_template(
        "customers/detail.html",
        business=business,
        ledger=ledger,
        others=others,
        now=datetime.now(UTC),
        ties=ties,
        salesperson=salesperson,
        suggestions=suggestions,
        generation=store.published_generation(),
    )


def _neighbourhood(business_id: str) -> network.Neighbourhood:
    try:
        return network.neighbourhood(get_store(), viewer(), business_id)
    except (NotFound, NotAllowed):
        abort(404)


@bp.get("/customers/<path:business_id>/network")
@login_required
def network_view(business_id: str) -> ResponseReturnValue:
    """The account's neighbourhood drawn with Cytoscape.js (and listed, for every reader)."""
    around = _neighbourhood(business_id)
    names = {n.id: n for n in around.nodes}
    return render_template("customers/network.html", around=around, names=names, centre=around.nodes[0])


@bp.get("/customers/<path:business_id>/network.json")
@login_required
def network_data(business_id: str) -> ResponseReturnValue:
    """The same neighbourhood as Cytoscape elements."""
    around = _neighbourhood(business_id)
    nodes = [{"data": {"id": n.id, "label": n.name, "kind": n.kind, "mine": n.mine, "centre": n.centre,
                       "href": url_for("customers.detail", business_id=n.id) if n.mine else None}}
             for n in around.nodes]  # fmt: skip
    edges = [{"data": {"id": f"e{i}", "source": e.source, "target": e.target, "kind": e.kind, "label": e.label}}
             for i, e in enumerate(around.edges)]  # fmt: skip
    return jsonify(elements=nodes + edges)
