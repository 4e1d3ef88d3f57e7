"""`flask --app app digest ...`: send the weekly email, preview it, list what was sent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from graph.records import DigestStatus
from netweave.cli import service_errors
from netweave.digest import mailer
from netweave.services import digests
from netweave.services.access import Viewer
from netweave.store import get_store


@click.group("digest")
def digest_group() -> None:
    """The weekly email of introductions to make."""


def _settings() -> digests.DigestSettings:
    return digests.DigestSettings.from_config(current_app.config)


@digest_group.command("send")
@click.option("--week", metavar="YYYY-Www", help="Send this ISO week's digests to everyone, whatever their hour.")
@click.option("--salesperson", "salespeople", multiple=True, metavar="EMAIL",
              help="Only this salesperson (repeatable), now, whatever their hour.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Build and list what would be sent; record and send nothing.")
@with_appcontext
@service_errors
def send_command(week: str | None, salespeople: tuple[str, ...], dry_run: bool) -> None:
    """Send the digests that are due: each salesperson's at their chosen day and hour (run it
    every few minutes from cron, or let the worker do it), failed ones again when their retry
    is due. Running it again sends nothing twice."""
    ids = [s.strip().lower() for s in salespeople] or None
    try:
        report = digests.send_digests(get_store(), _settings(), week=week, salesperson_ids=ids, dry_run=dry_run)
    except mailer.MailNotConfigured as error:
        raise click.ClickException(f"{error}; --dry-run shows what would be sent") from None
    for digest in report.would_send:
        what = "nothing new (no email)" if digest.status is DigestStatus.EMPTY else digest.subject
        click.echo(f"{digest.week}  {digest.recipient:<40} {what}")
    for digest_id, why in report.failed + report.gave_up:
        click.echo(f"failed: {digest_id}: {why}", err=True)
    click.echo(report.summary())
    if report.failed or report.gave_up or report.stopped:
        raise SystemExit(1)


@digest_group.command("preview")
@click.argument("salesperson_id", metavar="EMAIL")
@click.option("--week", metavar="YYYY-Www", help="Which ISO week (default: the salesperson's current week).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the HTML part to this file.")  # fmt: skip
@with_appcontext
@service_errors
def preview_command(salesperson_id: str, week: str | None, html_path: Path | None) -> None:
    """Show exactly what the salesperson's email holds: the one sent that week, or the one a
    run would send now (headers and the plain-text part)."""
    settings = _settings()
    digest = digests.preview(get_store(), Viewer.system(), salesperson_id.strip().lower(), settings, week=week)
    message = digests.message(digest, settings)
    for header in ("From", "To", "Subject", "List-Unsubscribe"):
        click.echo(f"{header}: {message[header]}")
    state = {DigestStatus.EMPTY: "nothing new: no email is sent"}.get(digest.status, digest.status.value)
    recorded = " (recorded)" if get_store().get_digest(digest.salesperson_id, digest.week) else " (not sent yet)"
    click.echo(f"Week: {digest.week}, {state}{recorded}\n")
    click.echo(digest.text)
    if html_path is not None:
        html_path.write_text(digest.html)
        click.echo(f"HTML part written to {html_path}", err=True)


@digest_group.command("list")
@click.option("--week", metavar="YYYY-Www", help="Only this ISO week.")
@with_appcontext
@service_errors
def list_command(week: str | None) -> None:
    """The digests recorded, newest first: to whom, and whether they went."""
    if week:
        digests.monday_of(week)
    now = datetime.now(UTC)
    for digest in get_store().list_digests(week=week, bodies=False):
        when = digest.sent_at or digest.next_attempt_at or digest.created_at
        age = f"{(now - when).days}d ago" if when <= now else f"at {when:%Y-%m-%d %H:%M}"
        error = f"  {digest.last_error}" if digest.last_error else ""
        click.echo(f"{digest.week}  {digest.recipient:<40} {digest.status.value:<8} {age:<18} "
                   f"{len(digest.items)} item(s){error}")  # fmt: skip
