"""The `flask --app app ...` commands, as a user runs them, on both backends."""

from __future__ import annotations

import csv

from graph import Role
from netweave.services import accounts


def test_import_command_reports_and_exits_by_outcome(runner, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("id,name,owner\nA-1,Alpha,dana@example.com\nA-2,Beta,dana@example.com\n")
    result = runner.invoke(args=["import", str(good)])
    assert result.exit_code == 0, result.output
    assert "2 rows: 2 created, 0 updated, 0 unchanged, 0 rejected" in result.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,owner\nA-1,Alpha,dana@example.com\nA-3,,dana@example.com\n")
    report = tmp_path / "rejected.csv"
    result = runner.invoke(args=["import", str(bad), "--report", str(report)])
    assert result.exit_code == 1
    assert "rejected line 3 (id 'A-3'): name: missing (required)" in result.stderr
    assert "2 rows: 0 created, 0 updated, 1 unchanged, 1 rejected" in result.stdout
    with report.open() as rejected:
        assert list(csv.reader(rejected)) == [
            ["line", "id", "kind", "reason"],
            ["3", "A-3", "rejected", "name: missing (required)"],
        ]


def test_the_rejections_report_cannot_run_a_formula_in_a_spreadsheet(runner, tmp_path):
    hostile = tmp_path / "hostile.csv"
    hostile.write_text('id,name,owner,email\n"=HYPERLINK(""http://evil.example"",""x"")",Alpha,dana@example.com,nope\n'
                       "@SUM(A1),,dana@example.com,\n")  # fmt: skip
    report = tmp_path / "rejected.csv"
    assert runner.invoke(args=["import", str(hostile), "--report", str(report)]).exit_code == 1
    with report.open() as rejected:
        ids = [row[1] for row in csv.reader(rejected)][1:]
    assert ids == ['\'=HYPERLINK("http://evil.example","x")', "'@SUM(A1)"]  # text, not formulas


def test_import_command_refuses_an_unreadable_file_with_status_2(runner, tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text("id,name,emial\nA-1,Alpha,a@b.com\n")
    result = runner.invoke(args=["import", str(path), "--salesperson", "dana@example.com"])
    assert result.exit_code == 2
    assert "typo.csv: line 1: unknown column(s) 'emial' (did you mean 'email'?)" in result.stderr
    assert "nothing was imported" in result.stderr


def test_import_help_documents_every_column(runner):
    from netweave.importer.columns import COLUMNS

    result = runner.invoke(args=["import", "--help"])
    assert result.exit_code == 0
    for name in COLUMNS:
        assert f"  {name}" in result.output


def test_demo_load_is_idempotent_and_stats_show_it(runner):
    first = runner.invoke(args=["demo", "load", "--businesses", "160"])
    assert first.exit_code == 0, first.output
    assert "160 created" in first.output
    assert "sign in as morgan.reyes@netweave-demo.com (a manager: every book)" in first.output
    again = runner.invoke(args=["demo", "load", "--businesses", "160"])
    assert "160 unchanged" in again.output
    stats = runner.invoke(args=["graph", "stats"])
    assert "businesses   160" in stats.output
    assert "salespeople  6" in stats.output  # the five of the book and their manager
    assert runner.invoke(args=["graph", "migrate"]).output.endswith("schema is up to date\n")


def write_book(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("id,name,owner,categories,city,region,metro\n" + "".join(f"{row}\n" for row in rows))
    return path


BOOK = [
    "A-1,Petal & Stem,dana@example.com,Florist,Minneapolis,MN,Twin Cities",
    "A-2,Lakeside Venue,dana@example.com,Wedding Venue,Minneapolis,MN,Twin Cities",
    "A-3,Summit Barn,dana@example.com,Wedding Venue,Minneapolis,MN,Twin Cities",
    "K-1,Olson Realty,ken@example.com,Real Estate Agent,Minneapolis,MN,Twin Cities",
]


def test_lifecycle_commands(runner, tmp_path):
    assert runner.invoke(args=["import", str(write_book(tmp_path, "book.csv", BOOK))]).exit_code == 0
    archived = runner.invoke(args=["customers", "archive", "A-2", "A-3"])
    assert archived.exit_code == 0 and archived.stdout == "archived 2 of 2: A-2, A-3\n"
    assert runner.invoke(args=["customers", "archive", "A-2"]).stdout == "archived 0 of 1\n"
    assert "businesses   2\narchived     2\n" in runner.invoke(args=["graph", "stats"]).stdout
    assert runner.invoke(args=["customers", "restore", "A-3"]).stdout == "restored 1 of 1: A-3\n"
    missing = runner.invoke(args=["customers", "archive", "A-1", "nope"])
    assert missing.exit_code == 2 and "no customer with id 'nope'" in missing.stderr
    denied = runner.invoke(args=["customers", "archive", "K-1", "--as", "dana@example.com"])
    assert denied.exit_code == 1 and "does not manage customer(s) K-1" in denied.stderr
    assert runner.invoke(args=["customers", "opt-out", "A-1", "--reason", "busy"]).stdout == "A-1: opted out\n"
    assert runner.invoke(args=["customers", "opt-out", "A-1", "--reason", "busy"]).stdout == "A-1: opted out already\n"
    assert runner.invoke(args=["customers", "opt-in", "A-1"]).stdout == "A-1: opt-out withdrawn\n"

    assert runner.invoke(args=["ties", "add", "A-1", "A-3", "--kind", "partners"]).stdout == "A-1 partners A-3\n"
    assert "(already recorded)" in runner.invoke(args=["ties", "add", "A-3", "A-1", "--kind", "partners"]).stdout
    assert runner.invoke(args=["ties", "remove", "A-1", "A-3", "--kind", "partners"]).stdout.endswith("removed\n")
    assert runner.invoke(args=["ties", "remove", "A-1", "A-3"]).stdout.endswith("no such tie\n")
    assert runner.invoke(args=["blocks", "add", "A-1", "K-1", "--reason", "rivals"]).stdout == "A-1 and K-1: blocked\n"
    assert runner.invoke(args=["blocks", "remove", "K-1", "A-1"]).stdout == "K-1 and A-1: unblocked\n"
    assert runner.invoke(args=["blocks", "add", "A-1", "A-1"]).exit_code == 2

    role = runner.invoke(args=["salespeople", "role", "Ken@Example.com", "manager"])
    assert role.exit_code == 0, role.output
    listed = runner.invoke(args=["salespeople", "list"]).stdout
    assert "ken@example.com" in listed and "manager" in listed
    assert runner.invoke(args=["salespeople", "role", "nobody@example.com", "manager"]).exit_code == 2
    jobs = runner.invoke(args=["jobs", "list", "--status", "queued"]).stdout
    assert jobs.count("refresh_changes") == 1, "every change shares the one waiting refresh"


def test_import_sync_asks_before_archiving_what_the_export_no_longer_holds(runner, tmp_path):
    assert runner.invoke(args=["import", str(write_book(tmp_path, "book.csv", BOOK))]).exit_code == 0
    smaller = write_book(tmp_path, "smaller.csv", BOOK[:1])  # Dana's full export now holds only A-1
    refused = runner.invoke(args=["import", str(smaller), "--sync"], input="n\n")
    assert refused.exit_code == 2 and "sync not confirmed (nothing was imported)" in refused.stderr
    assert "2 active account(s) of dana@example.com are not in this file" in refused.stderr
    assert "  A-2  Lakeside Venue" in refused.stderr
    dry = runner.invoke(args=["import", str(smaller), "--sync", "--dry-run"])
    assert "sync would archive 2 account(s) (dry run: nothing written)" in dry.stdout
    synced = runner.invoke(args=["import", str(smaller), "--sync"], input="y\n")
    assert synced.exit_code == 0, synced.output
    assert "1 unchanged, 0 rejected; 2 archived, 0 restored" in synced.stdout
    assert "businesses   2\narchived     2\n" in runner.invoke(args=["graph", "stats"]).stdout
    # A rejected row with an id is still an account the export holds: not archived, sync goes on.
    assert runner.invoke(args=["customers", "restore", "A-2", "A-3"]).exit_code == 0
    with_bad_row = write_book(tmp_path, "bad.csv", [*BOOK[:3], "A-4,,dana@example.com"])
    again = runner.invoke(args=["import", str(with_bad_row), "--sync", "--yes"])
    assert again.exit_code == 1 and "archived" not in again.stdout and "1 rejected" in again.stdout
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("id,name,owner\n,Nameless,dana@example.com\nA-1,Petal & Stem,dana@example.com\n")
    refused_sync = runner.invoke(args=["import", str(unnamed), "--sync", "--yes"])
    assert (
        refused_sync.exit_code == 2 and "--sync refused: 1 rejected row(s) have no id (line 2)" in refused_sync.stderr
    )


def test_a_salesperson_importing_their_export_owns_its_unowned_rows(runner, tmp_path):
    runner.invoke(args=["import", str(_owned(tmp_path))])  # makes Dana a salesperson
    export = tmp_path / "dana.csv"
    export.write_text("Record ID,Company name,Company owner,Create Date\nD-2,Beta,,2025-01-01 09:00\n")
    result = runner.invoke(args=["import", str(export), "--as", "dana@example.com"])
    assert result.exit_code == 0, result.output
    assert "note     ignored the CRM's own column(s) 'Create Date'" in result.stderr
    assert "unassigned" not in result.stderr, "hers, not the unassigned book"


def _owned(tmp_path):
    path = tmp_path / "owned.csv"
    path.write_text("id,name,owner\nD-1,Alpha,dana@example.com\n")
    return path


def test_match_rules_shows_the_weights_outcomes_moved(runner, tmp_path):
    assert runner.invoke(args=["import", str(write_book(tmp_path, "book.csv", BOOK))]).exit_code == 0
    quiet = runner.invoke(args=["match", "rules"])
    assert quiet.exit_code == 0 and "learned from outcomes: nothing yet" in quiet.stdout
    for _ in range(2):  # one person's repeated verdict counts once
        outcome = runner.invoke(args=["match", "outcome", "A-1", "A-2", "accepted", "--as", "dana@example.com"])
        assert outcome.exit_code == 0, outcome.output
    assert runner.invoke(args=["match", "dismiss", "A-1", "K-1", "--reason", "not_relevant"]).exit_code == 0
    learned = runner.invoke(args=["match", "rules"]).stdout
    # (1 + 2 prior) / (1 + 0 + 4 prior) * 2: shrunk toward the rules' weight by the prior
    assert "Petal & Stem [A-1] with a Wedding Venue: x1.20 (1.0 accepted, 0.0 declined or dismissed)" in learned
    assert "Lakeside Venue [A-2] with a Florist: x1.20" in learned
    assert "Petal & Stem [A-1] with a Real Estate Agent: x0.80 (0.0 accepted, 1.0 declined or dismissed)" in learned


def test_salespeople_are_added_for_sign_in_and_their_passwords_set(runner, app):
    store = app.extensions["netweave.store"]
    added = runner.invoke(
        args=["salespeople", "add", "Maya@Example.com", "--name", "Maya Lind", "--role", "manager", "--password-stdin"],
        input="a long enough one\n",
    )
    assert added.exit_code == 0, added.output
    assert "maya@example.com: added as manager" in added.output
    assert accounts.sign_in(store, "maya@example.com", "a long enough one").role is Role.MANAGER
    again = runner.invoke(args=["salespeople", "add", "maya@example.com", "--name", "Maya", "--no-password"])
    assert again.exit_code == 2 and "exists already" in again.output

    weak = runner.invoke(args=["salespeople", "set-password", "maya@example.com", "--password-stdin"], input="short\n")
    assert weak.exit_code == 2 and "at least 10 characters" in weak.output
    assert accounts.sign_in(store, "maya@example.com", "a long enough one") is not None  # unchanged
    prompted = runner.invoke(args=["salespeople", "set-password", "MAYA@example.com"],
                             input="tulips and roses\ntulips and roses\n")  # fmt: skip
    assert prompted.exit_code == 0 and "maya@example.com: password set" in prompted.output
    assert accounts.sign_in(store, "maya@example.com", "tulips and roses") is not None
    unknown = runner.invoke(args=["salespeople", "set-password", "nobody@example.com", "--password-stdin"],
                            input="a long enough one\n")  # fmt: skip
    assert unknown.exit_code == 2 and "no salesperson" in unknown.output
    refused = runner.invoke(args=["salespeople", "add", "lee@example.com", "--name", "Lee", "--password-stdin"],
                            input="short\n")  # fmt: skip
    assert refused.exit_code == 2 and store.get_salesperson("lee@example.com") is None  # nothing half-written
