"""`flask --app app demo ...`: load or write the demo book of business."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from netweave import demo
from netweave.jobs import get_jobs
from netweave.services import customers
from netweave.services.access import Viewer
from netweave.store import get_store


@click.group("demo")
def demo_group() -> None:
    """The demo book of business (deterministic for a given seed)."""


_seed = click.option("--seed", default=demo.DEFAULT_SEED, show_default=True, help="Same seed, same data.")
_count = click.option(
    "--businesses",
    "count",
    type=click.IntRange(min=demo.MIN_COUNT),
    default=demo.DEFAULT_COUNT,
    show_default=True,
    help="How many (at least one of every kind in every city).",
)


@demo_group.command("load")
@_seed
@_count
@with_appcontext
def load_command(seed: int, count: int) -> None:
    """Import the demo into the configured graph (re-running changes nothing)."""
    store = get_store()
    report = demo.load(store, demo.generate(seed, count))
    click.echo(f"demo: {report.summary()}")
    people = demo.enable_sign_in(store)
    click.echo(
        f"sign in as {demo.DEMO_MANAGER[0]} (a manager: every book) or {people[1 if len(people) > 1 else 0]}, "
        f"password {demo.DEMO_PASSWORD!r} ({len(people)} demo accounts)"
    )
    if report.changes:
        job = customers.request_refresh(get_jobs(), Viewer.system())
        click.echo(
            f"suggestions refresh in the background: job {job.id}" if job
            else "the job queue did not answer: the worker takes the demo in when it starts"
        )  # fmt: skip


@demo_group.command("write")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@_seed
@_count
def write_command(path: Path, seed: int, count: int) -> None:
    """Write the demo as a CRM-style CSV export (to try `flask --app app import`)."""
    demo.write_csv(demo.generate(seed, count), path)
    click.echo(f"wrote {count} businesses to {path}")
