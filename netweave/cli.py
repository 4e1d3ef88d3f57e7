"""`flask --app app ...` commands. Each is a thin shell over a plain function."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from netweave.importer import FORMATS, ImportFileError, ImportReport, import_file
from netweave.importer.columns import COLUMNS
from netweave.store import get_store


def _columns_help() -> str:
    lines = ["\b", "Columns (header spellings in brackets are accepted too):"]
    for name, (meaning, aliases) in COLUMNS.items():
        spellings = f" [{', '.join(aliases[:3])}]" if aliases else ""
        lines.append(f"  {name}{spellings}: {meaning}")
    return "\n".join(lines)


def _write_rejections(report: ImportReport, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "id", "kind", "reason"])
        for kind, items in (("rejected", report.rejected), ("warning", report.warnings)):
            for item in items:
                writer.writerow([item.line, item.business_id or "", kind, item.reason])


class FileNotImported(click.ClickException):
    exit_code = 2


@click.command("import", epilog=_columns_help())
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(FORMATS), help="Default: from the file's extension.")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the file.")
@click.option("--salesperson", metavar="EMAIL", help="Salesperson for rows without one.")
@click.option("--ignore-unknown-columns", is_flag=True, help="Skip columns Netweave does not know.")
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write rejected rows and warnings to this CSV file.",
)
@click.option(
    "--match/--no-match", default=True, show_default=True, help="Refresh suggestions of the customers that changed."
)
@with_appcontext
def import_command(
    file: Path,
    file_format: str | None,
    encoding: str,
    salesperson: str | None,
    ignore_unknown_columns: bool,
    dry_run: bool,
    report_path: Path | None,
    match: bool,
) -> None:
    """Import customer accounts from a CRM export (CSV or JSON Lines).

    Rows are upserted by id: new ids are created, changed rows updated, the rest
    left alone. Bad rows are reported with their line number and never written.
    Exit status: 0 all rows imported, 1 some rows rejected, 2 the file was not imported.
    """
    store = get_store()
    bar = None

    def start(total: int) -> None:
        nonlocal bar
        bar = click.progressbar(length=total, label="Importing", file=sys.stderr, show_pos=True)
        bar.__enter__()

    try:
        report = import_file(
            store,
            file,
            file_format=file_format,
            encoding=encoding,
            ignore_unknown_columns=ignore_unknown_columns,
            default_salesperson=salesperson,
            dry_run=dry_run,
            on_start=start,
            on_progress=lambda n: bar.update(n) if bar else None,
        )
    except ImportFileError as error:
        raise FileNotImported(f"{file.name}: {error} (nothing was imported)") from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)

    for item in report.rejected:
        click.echo(f"rejected {item}", err=True)
    for item in report.warnings:
        click.echo(f"warning  {item}", err=True)
    if report_path:
        _write_rejections(report, report_path)
    click.echo(report.summary() + (f"; {report.ties_created} new ties" if report.ties_created else ""))
    if match and report.changed_ids:
        from netweave.matching.cli import run_refresh

        # A big import changes most lists anyway: one full pass is cheaper than many incremental ones.
        incremental = len(report.changed_ids) <= max(50, store.count_businesses() // 5)
        refreshed = run_refresh(business_ids=report.changed_ids if incremental else None)
        click.echo(f"suggestions: {refreshed.summary()}")
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


@graph_group.command("stats")
@with_appcontext
def stats_command() -> None:
    """Counts of what the graph holds."""
    store = get_store()
    stats = store.stats()
    click.echo(f"backend      {store.backend}")
    for name in ("businesses", "salespeople", "categories", "places", "ties", "opted_out_pairs"):
        click.echo(f"{name.replace('_', ' '):<12} {getattr(stats, name)}")


def init_app(app: Flask) -> None:
    from netweave.demo.cli import demo_group
    from netweave.matching.cli import match_group

    app.cli.add_command(match_group)
    app.cli.add_command(import_command)
    app.cli.add_command(graph_group)
    app.cli.add_command(demo_group)
