"""Customers: import from a CRM, archive and restore, opt-outs, and salespeople's roles."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from graph import GraphStore, OptOut, Role, StoredBusiness
from graph.records import Job
from netweave.importer import ImportReport, PreparedImport, missing_accounts, write_rows
from netweave.jobs import JobQueue
from netweave.services.access import NotAllowed, NotFound, Viewer, business_for

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
    stored = store.get_businesses([row.record.id for row in prepared.rows])
    taken = [
        f"line {row.line} ({row.record.id}, managed by {owner})"
        for row in prepared.rows
        if (found := stored.get(row.record.id)) is not None
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
    if report.changed_ids or report.ties_created:
        report.refresh_job = request_refresh(jobs, viewer)
    return report


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
