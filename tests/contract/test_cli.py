"""The `flask --app app ...` commands, as a user runs them, on both backends."""

from __future__ import annotations

import csv


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
    again = runner.invoke(args=["demo", "load", "--businesses", "160"])
    assert "160 unchanged" in again.output
    stats = runner.invoke(args=["graph", "stats"])
    assert "businesses   160" in stats.output
    assert "salespeople  5" in stats.output
    assert runner.invoke(args=["graph", "migrate"]).output.endswith("schema is up to date\n")
