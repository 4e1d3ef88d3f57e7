"""`flask --app app match ...`: refresh, export, feedback and rule checks."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from graph import UnknownBusinessError
from graph.records import DismissReason, Feedback, FeedbackKind
from netweave.matching import RefreshReport
from netweave.matching.export import export_suggestions
from netweave.matching.rules import Rules, RulesError
from netweave.matching.setup import get_matcher
from netweave.store import get_store


@click.group("match")
def match_group() -> None:
    """Suggested introductions: compute, export, give feedback."""


def run_refresh(**selection: object) -> RefreshReport:
    """Refresh with progress bars on stderr (one per stage)."""
    bars: list = []

    def start(stage: str, total: int) -> None:
        if bars:
            bars[-1].__exit__(None, None, None)
        bars.append(click.progressbar(length=max(total, 1), label=f"{stage:<10}", file=sys.stderr, show_pos=True))
        bars[-1].__enter__()

    try:
        return get_matcher().refresh(on_start=start, on_progress=lambda n: bars[-1].update(n), **selection)
    finally:
        if bars:
            bars[-1].__exit__(None, None, None)


@match_group.command("refresh")
@click.option("--salesperson", metavar="EMAIL", help="Only this salesperson's customers.")
@click.option("--business", "business_ids", metavar="ID", multiple=True, help="Only these customers (repeatable).")
@with_appcontext
def refresh_command(salesperson: str | None, business_ids: tuple[str, ...]) -> None:
    """Recompute suggestions (embedding only texts that changed)."""
    store = get_store()
    if unknown := [i for i in business_ids if store.get_business(i) is None]:
        raise click.BadParameter(f"no customer with id {', '.join(map(repr, unknown))}", param_hint="--business")
    report = run_refresh(
        salesperson_id=salesperson.strip().lower() if salesperson else None,
        business_ids=list(business_ids) or None,
    )
    click.echo(report.summary())


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


def _take_feedback(a: str, b: str, kind: FeedbackKind, reason: str, salesperson: str | None) -> RefreshReport:
    try:
        return get_matcher().take_feedback(Feedback(a, b, kind, datetime.now(UTC), reason, salesperson))
    except UnknownBusinessError as error:
        raise click.BadParameter(f"no customer with id {', '.join(map(repr, error.ids))}") from None


@match_group.command("dismiss")
@click.argument("business_id")
@click.argument("other_id")
@click.option("--reason", type=click.Choice([r.value for r in DismissReason]), required=True)
@click.option("--salesperson", metavar="EMAIL")
@with_appcontext
def dismiss_command(business_id: str, other_id: str, reason: str, salesperson: str | None) -> None:
    """Dismiss a suggested pair. It is not suggested again (for bad_timing: for 90 days);
    'competitor' and 'not_relevant' also lower that kind of pair for everyone;
    'already_know' records that the two know each other."""
    report = _take_feedback(business_id, other_id, FeedbackKind.DISMISSED, reason, salesperson)
    click.echo(f"dismissed; {report.summary()}")


@match_group.command("outcome")
@click.argument("business_id")
@click.argument("other_id")
@click.argument("outcome", type=click.Choice(["made", "accepted", "declined"]))
@click.option("--salesperson", metavar="EMAIL")
@with_appcontext
def outcome_command(business_id: str, other_id: str, outcome: str, salesperson: str | None) -> None:
    """Record what became of an introduction; accepted and declined ones tune future rankings."""
    report = _take_feedback(business_id, other_id, FeedbackKind(f"intro_{outcome}"), "", salesperson)
    click.echo(f"recorded: intro {outcome}; {report.summary()}")


@match_group.command("rules")
@click.option(
    "--path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Default: the configured file."
)
@with_appcontext
def rules_command(path: Path | None) -> None:
    """Check the complementarity rules file and summarise it."""
    try:
        rules = Rules.load(path or current_app.config["RULES_PATH"])
    except RulesError as error:
        raise click.ClickException(str(error)) from None
    remote = sum(rules.remote(k) for k in rules.kinds)
    click.echo(
        f"{len(rules.kinds)} kinds ({remote} work remotely), {len(rules.file.spheres)} spheres, "
        f"{len(rules.file.pairs)} specific pairs"
    )
