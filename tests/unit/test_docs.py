"""The README documents what the code has: import columns, settings and commands."""

from __future__ import annotations

from pathlib import Path

from netweave.config import SETTINGS
from netweave.importer.columns import COLUMNS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_import_column_is_documented():
    for name in COLUMNS:
        assert f"`{name}`" in README, f"README lacks import column {name}"


def test_every_setting_is_documented():
    for variable, _default in SETTINGS.values():
        assert f"`{variable}`" in README, f"README lacks setting {variable}"


def test_every_cli_command_is_documented(app):
    for name, command in app.cli.commands.items():
        subcommands = getattr(command, "commands", {})
        for full in [f"{name} {sub}" for sub in subcommands] or [name]:
            assert f"flask --app app {full}" in README, f"README lacks `flask --app app {full}`"


def test_every_matching_weight_is_explained_in_docs_matching():
    from dataclasses import fields

    from netweave.matching.settings import MatchSettings, Weights

    matching = (Path(__file__).resolve().parents[2] / "docs" / "matching.md").read_text()
    for name in [f.name for f in fields(Weights)] + [f.name for f in fields(MatchSettings) if f.name != "weights"]:
        assert f"`{name}`" in matching, f"docs/matching.md lacks {name}"
