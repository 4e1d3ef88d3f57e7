"""Salespeople: the team (a salesperson sees only themself), one of them, and their accounts."""

from __future__ import annotations

from graph import Salesperson
from graph.records import TokenScope
from netweave.services.access import NotFound
from netweave.store import get_store
from netweave.web.api import bp, caller, requires, responses, spec
from netweave.web.api.schemas import SalespersonList, SalespersonOut, TokenOut

TAG = "salespeople"


@bp.get("/salespeople")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": SalespersonList}), tags=[TAG], operation_id="listSalespeople")
def list_salespeople() -> SalespersonList:
    """Every salesperson the token may see, by name, with their active accounts."""
    viewer = caller().viewer
    items = [
        _out(summary.salesperson, summary.business_count)
        for summary in get_store().list_salespeople()
        if viewer.sees_every_book or summary.salesperson.id == viewer.salesperson_id
    ]
    return SalespersonList(items=items)


@bp.get("/salespeople/<salesperson_id>")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": SalespersonOut}, 404), tags=[TAG], operation_id="getSalesperson")
def get_salesperson(salesperson_id: str) -> SalespersonOut:
    """One salesperson (by email or id)."""
    salesperson_id = salesperson_id.strip().lower()
    caller().viewer.require_book(salesperson_id)
    person = get_store().get_salesperson(salesperson_id)
    if person is None:
        raise NotFound(f"no salesperson {salesperson_id!r}")
    return _out(person, get_store().count_businesses(salesperson_id=person.id))


def _out(person: Salesperson, active_accounts: int) -> SalespersonOut:
    return SalespersonOut(
        id=person.id, name=person.name, email=person.email, role=person.role.value, active_accounts=active_accounts
    )


@bp.get("/me")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": TokenOut}), tags=["tokens"], operation_id="whoAmI")
def me() -> TokenOut:
    """The token this request carries: its id, name, scopes and owner (never its secret)."""
    return TokenOut.of(caller().token)
