"""`flask --app app match ...`: refresh, read, export, feedback and rule checks."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from graph.records import DismissReason, FeedbackKind
from netweave.cli import acting_as, as_option, report_job, service_errors, wait_option
from netweave.jobs import get_jobs
from netweave.matching.export import export_suggestions
from netweave.matching.rules import Rules, RulesError
from netweave.matching.setup import match_settings
from netweave.services import matches
from netweave.store import get_store


@click.group("match")
def match_group() -> None:
    """Suggested introductions: compute, read, export, give feedback."""


@match_group.command("refresh")
@wait_option
@with_appcontext
def refresh_command(wait: bool) -> None:
    """Recompute every suggestion (a full refresh, run by the worker).

    Changes are refreshed on their own as they happen; this is for after editing the rules
    file (the worker reads it again first), or to start afresh. The model and the matching
    settings come from the environment: restart the worker to change them (its start
    recomputes every list).
    """
    jobs = get_jobs()
    report_job(jobs, jobs.refresh_all(requested_by="cli"), wait)


@match_group.command("show")
@click.argument("business_id")
@as_option
@with_appcontext
@service_errors
def show_command(business_id: str, as_salesperson: str | None) -> None:
    """A customer's suggestions, as a salesperson (--as) or the system sees them."""
    viewer = acting_as(as_salesperson)
    views = matches.suggestions_for_business(get_store(), viewer, business_id)
    if not views:
        click.echo(f"{business_id}: no suggestions")
    for view in views:
        other = view.other
        owner = f" (owner: {other.owner_name})" if view.across_books else ""
        click.echo(f"{view.rank}. {other.name} [{other.id}] score {view.score:.3f}{owner}")
        if other.contact is not None:
            click.echo(f"   contact: {other.contact.contact_name or '-'} <{other.contact.email or '-'}>")
        elif view.across_books:
            click.echo(f"   contact: hidden until {other.owner_name} shares it")
        for reason in view.reasons:
            click.echo(f"   - {reason}")


@match_group.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default stdout).")
@with_appcontext
def export_command(output: Path | None) -> None:
    """Write every business's ranked suggestions as JSON (CRM ids, score, reasons for each side)."""
    text = json.dumps(export_suggestions(get_store()), indent=2, ensure_ascii=False)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote suggestions to {output}", err=True)
    else:
        click.echo(text)


def _feedback(business_id: str, other_id: str, kind: FeedbackKind, reason: str, as_salesperson: str | None) -> None:
    matches.record_feedback(get_store(), get_jobs(), acting_as(as_salesperson), business_id, other_id, kind, reason)


@match_group.command("dismiss")
@click.argument("business_id")
@click.argument("other_id")
@click.option("--reason", type=click.Choice([r.value for r in DismissReason]), required=True)
@as_option
@with_appcontext
@service_errors
def dismiss_command(business_id: str, other_id: str, reason: str, as_salesperson: str | None) -> None:
    """Dismiss a suggested pair. It is not suggested again (for bad_timing: for 90 days);
    'competitor' and 'not_relevant' also make each side count the other's kind for less;
    'already_know' records that the two know each other."""
    _feedback(business_id, other_id, FeedbackKind.DISMISSED, reason, as_salesperson)
    click.echo("dismissed; suggestions refresh in the background")


@match_group.command("outcome")
@click.argument("business_id")
@click.argument("other_id")
@click.argument("outcome", type=click.Choice(["made", "accepted", "declined"]))
@as_option
@with_appcontext
@service_errors
def outcome_command(business_id: str, other_id: str, outcome: str, as_salesperson: str | None) -> None:
    """Record what became of an introduction; accepted and declined ones teach both sides."""
    _feedback(business_id, other_id, FeedbackKind(f"intro_{outcome}"), "", as_salesperson)
    click.echo(f"recorded: intro {outcome}; suggestions refresh in the background")


@match_group.command("share-contact")
@click.argument("business_id")
@click.argument("with_business_id")
@as_option
@with_appcontext
@service_errors
def share_contact_command(business_id: str, with_business_id: str, as_salesperson: str | None) -> None:
    """Let the salesperson of WITH_BUSINESS_ID see BUSINESS_ID's contact details (its owner agrees)."""
    new = matches.share_contact(get_store(), acting_as(as_salesperson), business_id, with_business_id)
    click.echo(f"{business_id}'s contact details " + ("now shared" if new else "were already shared") +
               f" with the salesperson of {with_business_id}")  # fmt: skip


@match_group.command("rules")
@click.option(
    "--path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Default: the configured file."
)
@with_appcontext
def rules_command(path: Path | None) -> None:
    """Check the complementarity rules file, summarise it, and show which weights learning
    from outcomes has moved (per business and kind of partner)."""
    try:
        rules = Rules.load(path or current_app.config["RULES_PATH"])
    except RulesError as error:
        raise click.ClickException(str(error)) from None
    remote = sum(rules.remote(k) for k in rules.kinds)
    click.echo(
        f"{len(rules.kinds)} kinds ({remote} work remotely), {len(rules.file.spheres)} spheres, "
        f"{len(rules.file.pairs)} specific pairs"
    )
    moved = matches.learned_weights(get_store(), rules, match_settings(current_app.config).weights)
    if not moved:
        click.echo("learned from outcomes: nothing yet (weights are the rules' own)")
        return
    click.echo(f"learned from outcomes: {len(moved)} weight(s) moved")
    for item in moved:
        click.echo(
            f"  {item.business_name} [{item.business_id}] with a {item.kind}: x{item.factor:.2f}"
            f" ({item.accepted:.1f} accepted, {item.rejected:.1f} declined or dismissed)"
        )
