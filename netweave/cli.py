"""`flask --app app ...` commands. Each is a thin shell over a service function.

The CLI is the operator's tool: it acts as the system (every book) unless `--as EMAIL`
says which salesperson to act as.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from defusedcsv import csv as defused
from flask import Flask
from flask.cli import with_appcontext

from graph import Role, TieKind
from graph.records import Job, JobStatus, TokenScope
from graph.store import UnknownBusinessError, UnknownJobError, UnknownSalespersonError
from netweave.importer import FORMATS, FileChanged, ImportFileError, ImportReport, SyncRefused, prepare_file
from netweave.importer.columns import COLUMNS
from netweave.jobs import JobQueue, get_jobs, get_runner, run_worker
from netweave.services import accounts, customers, network, tokens
from netweave.services.access import NotAllowed, NotFound, Viewer, viewer_for
from netweave.store import get_store

F = TypeVar("F", bound=Callable[..., Any])


class FileNotImported(click.ClickException):
    exit_code = 2


def service_errors(command: F) -> F:
    """Service errors as the CLI's: unknown ids and bad values are usage errors (exit 2),
    refusals exit 1."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (NotFound, UnknownBusinessError, UnknownSalespersonError, UnknownJobError, ValueError) as error:
            raise click.BadParameter(str(error)) from None
        except NotAllowed as error:
            raise click.ClickException(str(error)) from None

    return run  # type: ignore[return-value]


def acting_as(salesperson: str | None) -> Viewer:
    return Viewer.system() if salesperson is None else viewer_for(get_store(), salesperson)


as_option = click.option(
    "--as", "as_salesperson", metavar="EMAIL", help="Act as this salesperson (default: the system)."
)


@contextmanager
def _bar(label: str, total: int) -> Iterator[Any]:
    with click.progressbar(length=max(total, 1), label=f"{label:<10}", file=sys.stderr, show_pos=True) as bar:
        yield bar


def wait_for_job(jobs: JobQueue, job: Job, timeout: float | None = None) -> Job:
    """Follow a job's progress on stderr until it ends; hints at a missing worker."""
    stage, bar, shown, started, hinted = None, None, 0, time.monotonic(), False
    context = None
    try:
        while True:
            current = jobs.get(job.id) or job
            if current.progress and current.progress.stage != stage:
                if context is not None:
                    context.__exit__(None, None, None)
                stage, shown = current.progress.stage, 0
                context = _bar(stage, current.progress.total)
                bar = context.__enter__()
            if bar is not None and current.progress and current.progress.done > shown:
                bar.update(current.progress.done - shown)
                shown = current.progress.done
            if current.status in (JobStatus.DONE, JobStatus.FAILED):
                return current
            waited = time.monotonic() - started
            if current.status is JobStatus.QUEUED and waited > 10 and not hinted:
                click.echo(
                    "still queued: is a worker running? (`make run`, `flask --app app worker`, "
                    "or `flask --app app jobs run` to run it here)",
                    err=True,
                )
                hinted = True
            if timeout is not None and waited > timeout:
                return current
            time.sleep(0.2)
    finally:
        if context is not None:
            context.__exit__(None, None, None)


def report_job(jobs: JobQueue, job: Job, wait: bool) -> None:
    if not wait:
        click.echo(f"suggestions refresh in the background: job {job.id} ({job.status.value})")
        return
    done = wait_for_job(jobs, job)
    if done.status is JobStatus.FAILED:
        raise click.ClickException(f"job {done.id} failed: {done.error}")
    click.echo(f"suggestions: {done.summary}")


wait_option = click.option("--wait", is_flag=True, help="Wait for the refresh of suggestions to finish.")


def _columns_help() -> str:
    lines = ["\b", "Columns (header spellings in brackets are accepted too):"]
    for name, (meaning, aliases) in COLUMNS.items():
        spellings = f" [{', '.join(aliases[:3])}]" if aliases else ""
        lines.append(f"  {name}{spellings}: {meaning}")
    return "\n".join(lines)


def _write_rejections(report: ImportReport, path: Path) -> None:
    # defusedcsv: a cell of the CRM's data that starts like a formula (=, +, -, @) is written
    # as text, so opening the report in a spreadsheet runs nothing.
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = defused.writer(out)
        writer.writerow(["line", "id", "kind", "reason"])
        for kind, items in (("rejected", report.rejected), ("warning", report.warnings)):
            for item in items:
                writer.writerow([item.line, item.business_id or "", kind, item.reason])


@click.command("import", epilog=_columns_help())
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(FORMATS), help="Default: from the file's extension.")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the file.")
@click.option("--salesperson", metavar="EMAIL", help="Salesperson for rows without one.")
@click.option("--ignore-unknown-columns", is_flag=True, help="Skip columns Netweave does not know.")
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option(
    "--sync",
    is_flag=True,
    help="The file is a full export: archive its salespeople's accounts that it no longer holds (asks first).",
)
@click.option("--yes", is_flag=True, help="With --sync: archive without asking.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write rejected rows and warnings to this CSV file.",
)
@wait_option
@as_option
@with_appcontext
@service_errors
def import_command(
    file: Path,
    file_format: str | None,
    encoding: str,
    salesperson: str | None,
    ignore_unknown_columns: bool,
    dry_run: bool,
    sync: bool,
    yes: bool,
    report_path: Path | None,
    wait: bool,
    as_salesperson: str | None,
) -> None:
    """Import customer accounts from a CRM export (CSV or JSON Lines).

    Rows are upserted by id: new ids are created, changed rows updated, the rest
    left alone. Bad rows are reported with their line number and never written.
    Suggestions of what changed are refreshed in the background by the worker.
    Exit status: 0 all rows imported, 1 some rows rejected, 2 the file was not imported.
    """
    store, jobs, viewer = get_store(), get_jobs(), acting_as(as_salesperson)
    try:
        # The file is read twice, a row at a time: checked whole first, then written.
        with click.progressbar(length=max(file.stat().st_size, 1), label="Checking ", file=sys.stderr) as bar:
            prepared = prepare_file(
                file,
                store=store,
                file_format=file_format,
                encoding=encoding,
                ignore_unknown_columns=ignore_unknown_columns,
                # A salesperson's own export: rows without an owner are theirs.
                default_salesperson=salesperson or (None if viewer.sees_every_book else viewer.salesperson_id),
                on_read=bar.update,
            )
    except ImportFileError as error:
        raise FileNotImported(f"{file.name}: {error} (nothing was imported)") from None

    plan = None
    if sync:
        try:
            plan = customers.plan_sync(store, viewer, prepared)
        except SyncRefused as error:
            raise FileNotImported(f"{file.name}: --sync refused: {error} (nothing was imported)") from None
        if plan.missing:
            click.echo(f"{len(plan.missing)} active account(s) of {', '.join(sorted(prepared.salespeople))} "
                       "are not in this file and will be archived:", err=True)  # fmt: skip
            for business in plan.missing[:20]:
                click.echo(f"  {business.id}  {business.record.name}", err=True)
            if len(plan.missing) > 20:
                click.echo(f"  ... and {len(plan.missing) - 20} more", err=True)
            if not dry_run and not yes and not click.confirm("Archive them?", err=True):
                raise FileNotImported(f"{file.name}: sync not confirmed (nothing was imported)")

    try:
        with click.progressbar(length=max(prepared.total, 1), label="Importing", file=sys.stderr, show_pos=True) as bar:
            report = customers.import_customers(
                store, jobs, viewer, prepared, sync=plan, dry_run=dry_run, on_progress=bar.update
            )
    except FileChanged as error:
        raise FileNotImported(f"{file.name}: {error}") from None

    if report.ignored_columns:
        names = ", ".join(repr(name) for name in report.ignored_columns)
        click.echo(f"note     ignored the CRM's own column(s) {names} (Netweave does not use them)", err=True)
    for item in report.rejected:
        click.echo(f"rejected {item}", err=True)
    for item in report.warnings:
        click.echo(f"warning  {item}", err=True)
    if report_path:
        _write_rejections(report, report_path)
    click.echo(report.summary() + (f"; {report.ties_created} new ties" if report.ties_created else ""))
    if dry_run and plan is not None:
        click.echo(f"sync would archive {len(plan.missing)} account(s) (dry run: nothing written)")
    if report.refresh_job is not None:
        report_job(jobs, report.refresh_job, wait)
    elif report.changes or report.ties_created:
        click.echo("the job queue did not answer: the changes are pending, and the worker takes them in", err=True)
    if report.rejected:
        sys.exit(1)


@click.group("graph")
def graph_group() -> None:
    """Inspect and maintain the customer graph."""


@graph_group.command("migrate")
@with_appcontext
def migrate_command() -> None:
    """Apply pending schema migrations (the app also does this at start-up)."""
    store = get_store()
    applied = store.migrate()
    click.echo(f"{store.backend}: " + (f"applied {', '.join(applied)}" if applied else "schema is up to date"))


def _embedded_store() -> Any:
    from graph.embedded_store import EmbeddedStore

    store = get_store()
    if not isinstance(store, EmbeddedStore):
        raise click.ClickException(
            "this store is Neo4j: back it up with `graph/neo4j-server dump FILE` (see the README's Backups)"
        )
    return store


@graph_group.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def graph_backup_command(file: Path) -> None:
    """Copy the embedded store into FILE (a new file), consistent while the app runs."""
    try:
        _embedded_store().backup_to(file)
    except FileExistsError as error:
        raise click.BadParameter(str(error), param_hint="FILE") from None
    click.echo(f"backed up to {file} ({file.stat().st_size:,} bytes)")


@graph_group.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace the store without asking.")
@with_appcontext
def graph_restore_command(file: Path, yes: bool) -> None:
    """Replace everything in the embedded store by the backup in FILE (stop the worker first:
    the suggestions it holds in memory would be the replaced ones)."""
    from graph.embedded_store import BackupRefused

    store = _embedded_store()
    if not yes:
        click.confirm(f"Replace everything in {store.path} by {file}?", abort=True)
    try:
        applied = store.restore_from(file)
    except BackupRefused as error:
        raise click.BadParameter(str(error), param_hint="FILE") from None
    stats = store.stats()
    upgraded = f"; then applied {', '.join(applied)}" if applied else ""
    click.echo(f"restored {file}: {stats.businesses} businesses, {stats.salespeople} salespeople{upgraded}")


@graph_group.command("stats")
@with_appcontext
def stats_command() -> None:
    """Counts of what the graph holds."""
    store = get_store()
    stats = store.stats()
    click.echo(f"backend      {store.backend}")
    for name in ("businesses", "archived", "salespeople", "categories", "places", "ties", "opted_out_pairs"):
        click.echo(f"{name.replace('_', ' '):<12} {getattr(stats, name)}")
    generation = store.published_generation()
    if generation is None:
        click.echo("suggestions  none published yet")
    else:
        click.echo(
            f"suggestions  {generation.suggestions} in generation {generation.id} ({generation.kind.value}, "
            f"{generation.published_at:%Y-%m-%d %H:%M} UTC); {len(store.pending_changes())} changes pending"
        )


@click.group("customers")
def customers_group() -> None:
    """Archive, restore and opt customers out of introductions."""


@customers_group.command("archive")
@click.argument("business_ids", metavar="ID...", nargs=-1, required=True)
@as_option
@with_appcontext
@service_errors
def archive_command(business_ids: tuple[str, ...], as_salesperson: str | None) -> None:
    """Archive customers: they leave every list; their history, feedback and blocks stay."""
    changed = customers.archive(get_store(), get_jobs(), acting_as(as_salesperson), list(business_ids))
    click.echo(f"archived {len(changed)} of {len(business_ids)}" + (f": {', '.join(changed)}" if changed else ""))


@customers_group.command("restore")
@click.argument("business_ids", metavar="ID...", nargs=-1, required=True)
@as_option
@with_appcontext
@service_errors
def restore_command(business_ids: tuple[str, ...], as_salesperson: str | None) -> None:
    """Restore archived customers, with their history, feedback and blocks."""
    changed = customers.restore(get_store(), get_jobs(), acting_as(as_salesperson), list(business_ids))
    click.echo(f"restored {len(changed)} of {len(business_ids)}" + (f": {', '.join(changed)}" if changed else ""))


@customers_group.command("opt-out")
@click.argument("business_id", metavar="ID")
@click.option("--reason", default="", help="Why (shown to salespeople).")
@as_option
@with_appcontext
@service_errors
def opt_out_command(business_id: str, reason: str, as_salesperson: str | None) -> None:
    """Record that a customer wants no introductions at all (imports do not undo it)."""
    changed = customers.opt_out(get_store(), get_jobs(), acting_as(as_salesperson), business_id, reason)
    click.echo(f"{business_id}: opted out" + ("" if changed else " already"))


@customers_group.command("opt-in")
@click.argument("business_id", metavar="ID")
@as_option
@with_appcontext
@service_errors
def opt_in_command(business_id: str, as_salesperson: str | None) -> None:
    """Withdraw an opt-out recorded with `opt-out`."""
    store = get_store()
    changed = customers.opt_in(store, get_jobs(), acting_as(as_salesperson), business_id)
    business = store.get_business(business_id)
    still = " (the CRM still marks it opted out)" if business and business.record.opted_out else ""
    click.echo(f"{business_id}: " + ("opt-out withdrawn" if changed else "was not opted out here") + still)


_kind = click.option(
    "--kind",
    type=click.Choice(["knows", "partners"]),
    default="knows",
    show_default=True,
    help="Knows each other, or partners with each other.",
)


def _tie_kind(kind: str) -> TieKind:
    return TieKind.KNOWS if kind == "knows" else TieKind.PARTNERS_WITH


@click.group("ties")
def ties_group() -> None:
    """Ties between customers (who already know or partner with whom): never suggested."""


@ties_group.command("add")
@click.argument("business_id")
@click.argument("other_id")
@_kind
@as_option
@with_appcontext
@service_errors
def tie_add_command(business_id: str, other_id: str, kind: str, as_salesperson: str | None) -> None:
    """Record a tie between two customers."""
    new = network.add_tie(get_store(), get_jobs(), acting_as(as_salesperson), business_id, other_id, _tie_kind(kind))
    click.echo(f"{business_id} {kind} {other_id}" + ("" if new else " (already recorded)"))


@ties_group.command("remove")
@click.argument("business_id")
@click.argument("other_id")
@_kind
@as_option
@with_appcontext
@service_errors
def tie_remove_command(business_id: str, other_id: str, kind: str, as_salesperson: str | None) -> None:
    """Remove a tie (the two may be suggested to each other again)."""
    gone = network.remove_tie(
        get_store(), get_jobs(), acting_as(as_salesperson), business_id, other_id, _tie_kind(kind)
    )
    click.echo(f"{business_id} {kind} {other_id}: " + ("removed" if gone else "no such tie"))


@click.group("blocks")
def blocks_group() -> None:
    """Do-not-introduce pairs."""


@blocks_group.command("add")
@click.argument("business_id")
@click.argument("other_id")
@click.option("--reason", default="", help="Why the two must not be introduced.")
@as_option
@with_appcontext
@service_errors
def block_add_command(business_id: str, other_id: str, reason: str, as_salesperson: str | None) -> None:
    """Never introduce two customers to each other."""
    new = network.block(get_store(), get_jobs(), acting_as(as_salesperson), business_id, other_id, reason)
    click.echo(f"{business_id} and {other_id}: " + ("blocked" if new else "already blocked"))


@blocks_group.command("remove")
@click.argument("business_id")
@click.argument("other_id")
@as_option
@with_appcontext
@service_errors
def block_remove_command(business_id: str, other_id: str, as_salesperson: str | None) -> None:
    """Allow a blocked pair again."""
    gone = network.unblock(get_store(), get_jobs(), acting_as(as_salesperson), business_id, other_id)
    click.echo(f"{business_id} and {other_id}: " + ("unblocked" if gone else "were not blocked"))


@click.group("salespeople")
def salespeople_group() -> None:
    """Salespeople and their roles."""


@salespeople_group.command("list")
@with_appcontext
def salespeople_list_command() -> None:
    """Every salesperson, their role and how many active accounts they manage."""
    for summary in get_store().list_salespeople():
        person = summary.salesperson
        click.echo(f"{person.id:<40} {person.role.value:<12} {summary.business_count:>6}  {person.name}")


@salespeople_group.command("role")
@click.argument("salesperson_id", metavar="EMAIL")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@with_appcontext
@service_errors
def salespeople_role_command(salesperson_id: str, role: str) -> None:
    """Make a salesperson a manager (sees every book) or a salesperson (their own)."""
    customers.set_role(get_store(), Viewer.system(), salesperson_id.strip().lower(), Role(role))
    click.echo(f"{salesperson_id}: {role}")


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@salespeople_group.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Their name, as shown in the app.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.SALESPERSON.value, show_default=True)
@click.option("--password/--no-password", "with_password", default=True, show_default=True,
              help="Ask for their password now (else set it later with set-password).")  # fmt: skip
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@with_appcontext
@service_errors
def salespeople_add_command(email: str, name: str, role: str, with_password: bool, password_stdin: bool) -> None:
    """Add a salesperson who signs in to the web app with EMAIL."""
    store = get_store()
    password = _new_password(password_stdin) if with_password or password_stdin else None
    if password is not None:
        accounts.check_password(password, email)  # before anything is written
    person = accounts.add_salesperson(store, email, name, Role(role))
    if password is not None:
        accounts.set_password(store, person.id, password)
    click.echo(f"{person.id}: added as {person.role.value}" + ("" if password else "; no password yet"))


@salespeople_group.command("set-password")
@click.argument("salesperson_id", metavar="EMAIL")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@with_appcontext
@service_errors
def salespeople_set_password_command(salesperson_id: str, password_stdin: bool) -> None:
    """Set a salesperson's password for the web app (signs their other sessions out)."""
    person = accounts.set_password(get_store(), salesperson_id.strip().lower(), _new_password(password_stdin))
    click.echo(f"{person.id}: password set")


@click.group("jobs")
def jobs_group() -> None:
    """Background jobs (refreshes of suggestions)."""


def _job_line(job: Job) -> str:
    took = f"{(job.finished_at - job.started_at).total_seconds():.2f} s" if job.finished_at and job.started_at else ""
    return (
        f"{job.id}  {job.kind:<16} {job.status.value:<8} {job.created_at:%Y-%m-%d %H:%M:%S}  {took:>9}  {job.summary}"
    )


@jobs_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in JobStatus]), help="Only jobs with this status.")
@click.option("--limit", default=20, show_default=True)
@with_appcontext
def jobs_list_command(status: str | None, limit: int) -> None:
    """The newest jobs first."""
    for job in get_jobs().list(limit=limit, status=JobStatus(status) if status else None):
        click.echo(_job_line(job))


@jobs_group.command("show")
@click.argument("job_id")
@with_appcontext
def jobs_show_command(job_id: str) -> None:
    """One job in full."""
    job = get_jobs().get(job_id)
    if job is None:
        raise click.BadParameter(f"no job with id {job_id!r}")
    for name, value in (
        ("id", job.id), ("kind", job.kind), ("status", job.status.value), ("requested by", job.requested_by),
        ("created", job.created_at), ("started", job.started_at), ("finished", job.finished_at),
        ("attempts", job.attempts), ("summary", job.summary), ("error", job.error),
        ("progress", f"{job.progress.stage} {job.progress.done}/{job.progress.total}" if job.progress else None),
    ):  # fmt: skip
        if value not in (None, ""):
            click.echo(f"{name:<13} {value}")


@jobs_group.command("run")
@with_appcontext
def jobs_run_command() -> None:
    """Run every queued job here and now, then exit (when no worker runs)."""
    ran = get_runner().run_queued()
    click.echo(f"ran {ran} job(s)")


@click.group("tokens")
def tokens_group() -> None:
    """API tokens for the CRM and integrators (see docs/api.md)."""


@tokens_group.command("create")
@click.argument("name")
@click.option(
    "--scope", "scopes", multiple=True, required=True, type=click.Choice([s.value for s in TokenScope]),
    help="read, write or admin (each includes the ones before it); repeat for several.",
)  # fmt: skip
@click.option(
    "--salesperson", metavar="EMAIL",
    help="The token acts as this salesperson (a manager's sees every book). Without it: an integration, every book.",
)  # fmt: skip
@with_appcontext
@service_errors
def tokens_create_command(name: str, scopes: tuple[str, ...], salesperson: str | None) -> None:
    """Create a token; its secret is printed once (only a hash is kept)."""
    issued = tokens.create_token(
        get_store(), Viewer.system(), name, [TokenScope(s) for s in scopes], salesperson_id=salesperson
    )
    owner = issued.token.salesperson_id or "integration (every book)"
    click.echo(f"token {issued.token.id} for {owner}, scopes {', '.join(issued.token.scopes)}", err=True)
    click.echo("keep this secret now; it is not shown again:", err=True)
    click.echo(issued.secret)


@tokens_group.command("list")
@with_appcontext
def tokens_list_command() -> None:
    """Every token: id, owner, scopes, created, revoked (never the secret)."""
    for token in tokens.list_tokens(get_store(), Viewer.system()):
        owner = token.salesperson_id or "integration"
        revoked = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "live"
        click.echo(
            f"{token.id}  {owner:<32} {','.join(token.scopes):<17} {token.created_at:%Y-%m-%d %H:%M}  "
            f"{revoked:<24} {token.name}"
        )


@tokens_group.command("revoke")
@click.argument("token_id")
@with_appcontext
@service_errors
def tokens_revoke_command(token_id: str) -> None:
    """Revoke a token at once (requests with it get 401)."""
    live = tokens.revoke_token(get_store(), Viewer.system(), token_id)
    click.echo(f"{token_id}: " + ("revoked" if live else "was already revoked"))


@click.command("worker")
@click.option("--helper", is_flag=True, help="Run no jobs: rank parts of the worker's split full refreshes.")
@with_appcontext
def worker_command(helper: bool) -> None:
    """Run background jobs until stopped (the Procfile's `worker`); with --helper, help the
    worker with full refreshes split by market (NETWEAVE_REFRESH_PARTS), on any machine."""
    from flask import current_app

    run_worker(current_app._get_current_object(), helper=helper)  # type: ignore[attr-defined]


def init_app(app: Flask) -> None:
    from netweave.demo.cli import demo_group
    from netweave.digest.cli import digest_group
    from netweave.matching.cli import match_group

    for command in (
        match_group, import_command, graph_group, demo_group, customers_group, ties_group, blocks_group,
        salespeople_group, jobs_group, tokens_group, worker_command, digest_group,
    ):  # fmt: skip
        app.cli.add_command(command)
