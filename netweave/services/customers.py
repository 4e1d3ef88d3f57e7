"""Customers: import from a CRM, archive and restore, opt-outs, and salespeople's roles."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graph import GraphStore, OptOut, Role, StoredBusiness
from graph.records import Job
from netweave.importer import ImportReport, PreparedImport, Rejection, missing_accounts, prepare_rows, write_rows
from netweave.importer.reader import RawRow
from netweave.importer.rows import row_of
from netweave.jobs import JobQueue
from netweave.services.access import Conflict, Invalid, NotAllowed, NotFound, Viewer, business_for

log = logging.getLogger(__name__)


def request_refresh(jobs: JobQueue, viewer: Viewer) -> Job | None:
    """After a committed change: ask the worker to take it in; returns the refresh job. If the
    queue cannot be reached (None) the change is not lost: it is pending in the store and the
    worker's sweep (or its next start) takes it in."""
    try:
        return jobs.refresh_changes(requested_by=viewer.label)
    except Exception:
        log.warning("could not queue a refresh; the change is pending and will be taken in later", exc_info=True)
        return None


@dataclass(frozen=True)
class SyncPlan:
    """What a sync of a full export would archive, for the user to confirm."""

    missing: tuple[StoredBusiness, ...]

    @property
    def ids(self) -> list[str]:
        return [b.id for b in self.missing]


def plan_sync(store: GraphStore, viewer: Viewer, prepared: PreparedImport) -> SyncPlan:
    """Accounts of the file's salespeople that the file no longer holds (raises SyncRefused
    when that cannot be told, NotAllowed for another salesperson's book)."""
    _require_own_rows(store, viewer, prepared)
    return SyncPlan(tuple(missing_accounts(store, prepared)))


def _require_own_rows(store: GraphStore, viewer: Viewer, prepared: PreparedImport) -> None:
    """A salesperson imports into their own book only: every row must name them, and no row
    may take over an account another salesperson manages (whatever its salesperson column says)."""
    if viewer.sees_every_book:
        return
    for salesperson in prepared.salespeople:
        viewer.require_book(salesperson)
    stored = store.get_businesses([key.business_id for key in prepared.valid])
    taken = [
        f"line {key.line} ({key.business_id}, managed by {owner})"
        for key in prepared.valid
        if (found := stored.get(key.business_id)) is not None
        and (owner := found.record.salesperson_id) != viewer.salesperson_id
    ]
    if taken:
        shown = "; ".join(taken[:5]) + (f"; and {len(taken) - 5} more" if len(taken) > 5 else "")
        raise NotAllowed(f"{viewer.label} may not import accounts of another book: {shown}")


def import_customers(
    store: GraphStore,
    jobs: JobQueue,
    viewer: Viewer,
    prepared: PreparedImport,
    *,
    sync: SyncPlan | None = None,
    dry_run: bool = False,
    on_progress: Callable[[int], None] = lambda done: None,
) -> ImportReport:
    """Write prepared rows (and archive what a confirmed sync plan lists); the changed
    accounts' suggestions are refreshed in the background."""
    _require_own_rows(store, viewer, prepared)
    report = write_rows(
        store, prepared, dry_run=dry_run, archive_missing=sync.ids if sync else (), on_progress=on_progress
    )
    if report.changes or report.ties_created:
        report.refresh_job = request_refresh(jobs, viewer)
    return report


_PLACE_COLUMNS = ("city", "region", "country", "postal_code", "metro")


def upsert_businesses(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, items: Sequence[Mapping[str, Any]]
) -> ImportReport:
    """Create or update businesses by the CRM's id, each judged on its own as a file import
    judges a row (its `line` is its index). A salesperson writes their own book only: an item
    naming another salesperson, or an account another manages, is rejected, not the batch."""
    raw_rows = [RawRow(index, dict(item)) for index, item in enumerate(items)]
    judged = prepare_rows(raw_rows, default_salesperson=viewer.salesperson_id, store=store, row_noun="item")
    prepared = _own_rows_only(store, viewer, judged)
    report = write_rows(store, prepared)
    if report.changes or report.ties_created:
        report.refresh_job = request_refresh(jobs, viewer)
    return report


def _own_rows_only(store: GraphStore, viewer: Viewer, prepared: PreparedImport) -> PreparedImport:
    if viewer.sees_every_book:
        return prepared
    named = [(key.line, key.business_id, key.salesperson_id) for key in prepared.valid]
    named += [(row.line, row.business_id, row.salesperson_id) for row in prepared.unchanged]
    stored = store.get_businesses([business_id for _, business_id, _ in named])
    refused: dict[int, Rejection] = {}
    for line, business_id, salesperson in named:
        owner = stored[business_id].record.salesperson_id if business_id in stored else salesperson
        if salesperson != viewer.salesperson_id:
            problem = ("salesperson", f"you may write accounts of your own book only ({viewer.salesperson_id})")
        elif owner != viewer.salesperson_id:
            problem = ("id", "not an account of your book")
        else:
            continue
        refused[line] = Rejection(line, f"{problem[0]}: {problem[1]}", business_id, (problem,))
    return prepared.without(refused) if refused else prepared


def _write_one(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, fields: Mapping[str, Any]
) -> tuple[StoredBusiness, ImportReport]:
    report = upsert_businesses(store, jobs, viewer, [fields])
    if report.rejected:
        rejection = report.rejected[0]
        raise Invalid(rejection.problems or (("", rejection.reason),))
    business_id = next(iter(report.outcomes))
    stored = store.get_business(business_id)
    assert stored is not None  # just written
    return stored, report


def create_business(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, fields: Mapping[str, Any]
) -> tuple[StoredBusiness, ImportReport]:
    """A new account (Conflict if its id is taken); Invalid names the fields at fault."""
    business_id = str(fields.get("id") or "").strip()
    if business_id and store.get_business(business_id) is not None:
        raise Conflict(f"a business with id {business_id!r} exists already: update it instead")
    return _write_one(store, jobs, viewer, fields)


def update_business(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, business_id: str, changes: Mapping[str, Any]
) -> tuple[StoredBusiness, ImportReport]:
    """Change some fields of an account the viewer manages, validated as a whole row."""
    stored = business_for(store, viewer, business_id, active=False)
    owner = store.get_salesperson(stored.record.salesperson_id)
    fields = row_of(stored.record, owner.name if owner else None)
    moved = any(column in changes for column in _PLACE_COLUMNS)
    if moved and not ({"latitude", "longitude"} & set(changes)):
        fields |= {"latitude": None, "longitude": None}  # found again from the new address
    if "salesperson" in changes and "salesperson_name" not in changes:
        fields["salesperson_name"] = None
    return _write_one(store, jobs, viewer, {**fields, **changes, "id": business_id})


def _set_archived(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, ids: Sequence[str], archived: bool, now: datetime | None
) -> list[str]:
    found = store.get_businesses(ids)
    if missing := [i for i in ids if i not in found]:
        raise NotFound(f"no customer with id {', '.join(map(repr, missing))}")
    if denied := [i for i in ids if not viewer.manages(found[i])]:
        raise NotAllowed(f"{viewer.label} does not manage customer(s) {', '.join(denied)}")
    changed = store.write(lambda tx: tx.set_archived(list(ids), archived, now or datetime.now(UTC)))
    if changed:
        request_refresh(jobs, viewer)
    return changed


def archive(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, ids: Sequence[str], now: datetime | None = None
) -> list[str]:
    """Archive accounts: they leave every list at once; their history, feedback, ties and
    blocks stay and come back on restore. Returns the ids that were active."""
    return _set_archived(store, jobs, viewer, ids, True, now)


def restore(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, ids: Sequence[str], now: datetime | None = None
) -> list[str]:
    """Restore archived accounts; returns the ids that were archived."""
    return _set_archived(store, jobs, viewer, ids, False, now)


def opt_out(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, business_id: str, reason: str, now: datetime | None = None
) -> bool:
    """Record that a customer wants no introductions (kept here, whatever later imports say)."""
    business_for(store, viewer, business_id, active=False)
    at = now or datetime.now(UTC)
    changed = store.write(lambda tx: tx.set_opt_out(business_id, OptOut(reason.strip(), at), at))
    if changed:
        request_refresh(jobs, viewer)
    return changed


def opt_in(store: GraphStore, jobs: JobQueue, viewer: Viewer, business_id: str, now: datetime | None = None) -> bool:
    """Withdraw an opt-out recorded here (the CRM's own opted_out column still counts)."""
    business_for(store, viewer, business_id, active=False)
    changed = store.write(lambda tx: tx.set_opt_out(business_id, None, now or datetime.now(UTC)))
    if changed:
        request_refresh(jobs, viewer)
    return changed


def set_role(store: GraphStore, viewer: Viewer, salesperson_id: str, role: Role) -> None:
    if not viewer.sees_every_book:
        raise NotAllowed(f"{viewer.label} may not change roles")
    if store.get_salesperson(salesperson_id) is None:
        raise NotFound(f"no salesperson {salesperson_id!r}")
    store.write(lambda tx: tx.set_salesperson_role(salesperson_id, role))
