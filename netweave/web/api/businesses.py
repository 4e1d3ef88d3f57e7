"""Businesses: read, list (filters, cursor pages), create, update, bulk upsert, archive and
restore, opt-outs. Writes ask for a refresh and return at once, with the job to follow."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime

from flask import request, url_for

from graph import BusinessStatus, StoredBusiness
from graph.records import TokenScope, UpsertOutcome
from netweave.importer import ImportReport
from netweave.jobs import get_jobs
from netweave.services import customers
from netweave.services.access import Viewer, business_for
from netweave.store import get_store
from netweave.web.api import bp, caller, check_if_match, requires, responses, spec
from netweave.web.api.problems import ApiProblem
from netweave.web.api.schemas import (
    BulkIn,
    BulkItemResult,
    BulkOut,
    BusinessIn,
    BusinessOut,
    BusinessPage,
    BusinessPatch,
    BusinessQuery,
    IdempotentHeaders,
    IfMatchHeaders,
    ItemProblem,
    JobOut,
    OptOutIn,
    WriteOut,
)

TAG = "businesses"


def _filters_digest(query: BusinessQuery, salesperson: str | None) -> str:
    shown = [salesperson, query.kind, query.city, query.status, query.updated_since and query.updated_since.isoformat()]
    return hashlib.blake2b(json.dumps(shown).encode(), digest_size=6).hexdigest()


def _encode_cursor(name: str, business_id: str, digest: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([name, business_id, digest]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, digest: str) -> tuple[str, str]:
    try:
        name, business_id, given = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(name, str) and isinstance(business_id, str)):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise _bad_cursor("not a cursor this API gave (pass `next_cursor` as it came)") from None
    if given != digest:
        raise _bad_cursor("it belongs to a list with other filters; keep the filters of its first page")
    return name, business_id


def _bad_cursor(why: str) -> ApiProblem:
    return ApiProblem(422, f"cursor: {why}", errors=[{"in": "query", "field": "cursor", "message": why}])


def _utc(moment: datetime | None) -> datetime | None:
    """A time the caller gave, in UTC (without an offset it is taken as UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # before year 1 in UTC: earlier than anything stored
        return datetime.min.replace(tzinfo=UTC)


def listed_salesperson(viewer: Viewer, asked: str | None) -> str | None:
    """A salesperson lists their own book whatever they ask (another's is not found)."""
    if asked:
        asked = asked.strip().lower()
        viewer.require_book(asked)
        return asked
    return None if viewer.sees_every_book else viewer.salesperson_id


@bp.get("/businesses")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": BusinessPage}, 422), tags=[TAG], operation_id="listBusinesses")
def list_businesses(query: BusinessQuery) -> BusinessPage:
    """List businesses, by name, a page at a time."""
    salesperson = listed_salesperson(caller().viewer, query.salesperson)
    digest = _filters_digest(query, salesperson)
    after = _decode_cursor(query.cursor, digest) if query.cursor else None
    status = None if query.status == "all" else BusinessStatus(query.status)
    page = get_store().list_businesses(
        salesperson_id=salesperson, category=query.kind, city=query.city, status=status,
        updated_since=_utc(query.updated_since), after=after, limit=query.limit + 1,
    )  # fmt: skip
    more = len(page) > query.limit
    page = page[: query.limit]
    next_cursor = _encode_cursor(page[-1].record.name, page[-1].id, digest) if more else None
    return BusinessPage(items=[BusinessOut.of(b) for b in page], next_cursor=next_cursor)


def etag(business: StoredBusiness) -> str:
    """Changes whenever anything the API shows of the business changes."""
    state = [business.record.content_hash(), str(business.archived_at), str(business.opt_out)]
    return '"' + hashlib.blake2b("|".join(state).encode(), digest_size=10).hexdigest() + '"'


@bp.get("/businesses/<business_id>")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": BusinessOut}, 404), tags=[TAG], operation_id="getBusiness")
def get_business(business_id: str) -> tuple[BusinessOut, int, dict[str, str]]:
    """One business, active or archived (its ETag goes in `If-Match` of an update)."""
    business = business_for(get_store(), caller().viewer, business_id, active=False)
    return BusinessOut.of(business), 200, {"ETag": etag(business)}


def _written(business: StoredBusiness, report: ImportReport, status: int = 200) -> tuple[WriteOut, int, dict[str, str]]:
    outcome = report.outcomes.get(business.id, UpsertOutcome.UNCHANGED)
    body = WriteOut(
        business=BusinessOut.of(business),
        result=outcome.value,
        warnings=[w.reason for w in report.warnings],
        refresh_job=JobOut.of(report.refresh_job) if report.refresh_job else None,
    )
    return body, status, {"Location": url_for("api.get_business", business_id=business.id), "ETag": etag(business)}


@bp.post("/businesses")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_201": WriteOut}, 400, 409, 413, 415, 422), tags=[TAG],
               headers=IdempotentHeaders, operation_id="createBusiness")  # fmt: skip
def create_business(json: BusinessIn) -> tuple[WriteOut, int, dict[str, str]]:
    """Create a business (its `id` is the CRM's); its suggestions follow in the background."""
    fields = json.model_dump(exclude_unset=True)
    business, report = customers.create_business(get_store(), get_jobs(), caller().viewer, fields)
    return _written(business, report, 201)


@bp.patch("/businesses/<business_id>")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": WriteOut}, 400, 404, 412, 413, 415, 422), tags=[TAG],
               headers=IfMatchHeaders, operation_id="updateBusiness")  # fmt: skip
def update_business(business_id: str, json: BusinessPatch) -> tuple[WriteOut, int, dict[str, str]]:
    """Change some fields of a business; the rest stay."""
    changes = json.model_dump(exclude_unset=True)
    if request.if_match:
        current = business_for(get_store(), caller().viewer, business_id, active=False)
        check_if_match(etag(current), f"business {business_id!r}")
    business, report = customers.update_business(get_store(), get_jobs(), caller().viewer, business_id, changes)
    return _written(business, report)


@bp.post("/businesses/bulk")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": BulkOut}, 400, 413, 415, 422), tags=[TAG], headers=IdempotentHeaders,
               operation_id="bulkUpsert")  # fmt: skip
def bulk_upsert(json: BulkIn) -> BulkOut:
    """Create or update up to 1,000 businesses by the CRM's id, with a result for each."""
    report = customers.upsert_businesses(get_store(), get_jobs(), caller().viewer, json.businesses)
    rejected = {r.line: r for r in report.rejected}
    warned: dict[int, list[str]] = {}
    for warning in report.warnings:
        warned.setdefault(warning.line, []).append(warning.reason)
    items = []
    for index, item in enumerate(json.businesses):
        raw_id = item.get("id")
        business_id = str(raw_id).strip() if isinstance(raw_id, str | int) and str(raw_id).strip() else None
        if index in rejected:
            problems = rejected[index].problems or (("", rejected[index].reason),)
            errors = [ItemProblem(field=field, message=message) for field, message in problems]
            items.append(BulkItemResult(index=index, id=business_id, result="rejected", errors=errors))
        else:
            outcome = report.outcomes.get(business_id or "", UpsertOutcome.UNCHANGED)
            items.append(BulkItemResult(index=index, id=business_id, result=outcome.value,
                                        warnings=warned.get(index, [])))  # fmt: skip
    return BulkOut(
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        rejected=len(report.rejected),
        items=items,
        refresh_job=JobOut.of(report.refresh_job) if report.refresh_job else None,
    )


def _status_changed(business_id: str, changed: list[str]) -> WriteOut:
    viewer = caller().viewer
    business = business_for(get_store(), viewer, business_id, active=False)
    # The refresh the change asked for, still waiting: asking again shares it.
    job = customers.request_refresh(get_jobs(), viewer) if changed else None
    return WriteOut(
        business=BusinessOut.of(business),
        result="updated" if changed else "unchanged",
        refresh_job=JobOut.of(job) if job else None,
    )


@bp.post("/businesses/<business_id>/archive")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": WriteOut}, 404, 422), tags=[TAG], headers=IdempotentHeaders,
               operation_id="archiveBusiness")  # fmt: skip
def archive_business(business_id: str) -> WriteOut:
    """Archive a business: it leaves every list at once; its history stays for a restore."""
    changed = customers.archive(get_store(), get_jobs(), caller().viewer, [business_id])
    return _status_changed(business_id, changed)


@bp.post("/businesses/<business_id>/restore")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": WriteOut}, 404, 422), tags=[TAG], headers=IdempotentHeaders,
               operation_id="restoreBusiness")  # fmt: skip
def restore_business(business_id: str) -> WriteOut:
    """Restore an archived business."""
    changed = customers.restore(get_store(), get_jobs(), caller().viewer, [business_id])
    return _status_changed(business_id, changed)


@bp.put("/businesses/<business_id>/opt-out")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": WriteOut}, 400, 404, 415, 422), tags=[TAG], operation_id="optOut")
def opt_out(business_id: str, json: OptOutIn) -> WriteOut:
    """Record that the customer wants no introductions (kept whatever later imports say)."""
    changed = customers.opt_out(get_store(), get_jobs(), caller().viewer, business_id, json.reason)
    return _status_changed(business_id, [business_id] if changed else [])


@bp.delete("/businesses/<business_id>/opt-out")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": WriteOut}, 404), tags=[TAG], operation_id="optIn")
def opt_in(business_id: str) -> WriteOut:
    """Withdraw the opt-out recorded here (the CRM's own opted_out field still counts)."""
    changed = customers.opt_in(get_store(), get_jobs(), caller().viewer, business_id)
    return _status_changed(business_id, [business_id] if changed else [])
