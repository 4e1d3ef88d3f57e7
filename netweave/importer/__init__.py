"""Bulk import of customer accounts exported from a CRM (CSV or JSON Lines).

Every row is read, validated and checked for duplicate ids before anything is
written; only valid rows are written, in batches that are each one transaction,
so a row lands whole or not at all. Writes are upserts by external id, so a
second run of the same file reports every row unchanged and writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from graph import BusinessRecord, GraphStore, Salesperson, Tie, TieKind, UpsertOutcome
from netweave.importer.reader import FORMATS, ImportFileError, RawRow, Rejection, read_file
from netweave.importer.rows import BusinessRow, describe_errors

__all__ = ["FORMATS", "ImportFileError", "ImportReport", "Rejection", "import_file", "import_rows"]

BATCH_SIZE = 500


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[Rejection] = field(default_factory=list)
    ties_created: int = 0
    changed_ids: list[str] = field(default_factory=list)
    dry_run: bool = False

    def count(self, outcome: UpsertOutcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def summary(self) -> str:
        if self.dry_run:
            valid = self.rows - len(self.rejected)
            return f"{self.rows} rows: {valid} valid, {len(self.rejected)} rejected (dry run: nothing written)"
        return (
            f"{self.rows} rows: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.rejected)} rejected"
        )


@dataclass(frozen=True)
class _ValidRow:
    line: int
    record: BusinessRecord
    salesperson: Salesperson
    ties: tuple[Tie, ...]


def _validate(raw_rows: Sequence[RawRow], default_salesperson: str | None) -> tuple[list[_ValidRow], list[Rejection]]:
    valid, rejected = [], []
    for raw in raw_rows:
        try:
            row = BusinessRow.model_validate(raw.fields)
        except ValidationError as error:
            raw_id = raw.fields.get("id")
            rejected.append(Rejection(raw.line, describe_errors(error), str(raw_id).strip() if raw_id else None))
            continue
        if not (row.salesperson or default_salesperson):
            rejected.append(
                Rejection(raw.line, "salesperson: missing (add a salesperson column or pass --salesperson)", row.id)
            )
            continue
        ties = tuple(
            [Tie(row.id, other, TieKind.PARTNERS_WITH) for other in row.partners]
            + [Tie(row.id, other, TieKind.KNOWS) for other in row.knows]
        )
        valid.append(
            _ValidRow(raw.line, row.to_record(default_salesperson), row.to_salesperson(default_salesperson), ties)
        )
    return valid, rejected


def _without_duplicate_ids(rows: list[_ValidRow]) -> tuple[list[_ValidRow], list[Rejection]]:
    """Rows whose id appears more than once are all rejected: which one is right is the CRM's call."""
    lines_by_id: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        lines_by_id[row.record.id].append(row.line)
    kept, rejected = [], []
    for row in rows:
        lines = lines_by_id[row.record.id]
        if len(lines) == 1:
            kept.append(row)
        else:
            others = ", ".join(str(n) for n in lines if n != row.line)
            rejected.append(
                Rejection(row.line, f"duplicate id (also on line {others}); keep one row per id", row.record.id)
            )
    return kept, rejected


def import_rows(
    store: GraphStore,
    raw_rows: Sequence[RawRow],
    *,
    read_rejections: Sequence[Rejection] = (),
    default_salesperson: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    on_progress: Callable[[int], None] = lambda done: None,
) -> ImportReport:
    """Validate and upsert rows; `on_progress` gets the number of rows handled per step."""
    now = now or datetime.now(UTC)
    report = ImportReport(rows=len(raw_rows) + len(read_rejections), dry_run=dry_run)
    valid, invalid = _validate(raw_rows, default_salesperson)
    valid, duplicates = _without_duplicate_ids(valid)
    report.rejected = sorted([*read_rejections, *invalid, *duplicates], key=lambda r: r.line)
    on_progress(len(raw_rows) - len(valid))
    if dry_run:
        on_progress(len(valid))
        return report

    people = {row.salesperson.id: row.salesperson for row in valid}
    if people:
        store.upsert_salespeople(list(people.values()))
    for start in range(0, len(valid), BATCH_SIZE):
        batch = valid[start : start + BATCH_SIZE]
        outcomes = store.upsert_businesses([row.record for row in batch], now)
        for row, outcome in zip(batch, outcomes, strict=True):
            report.count(outcome)
            if outcome is not UpsertOutcome.UNCHANGED:
                report.changed_ids.append(row.record.id)
        on_progress(len(batch))

    report.ties_created, report.warnings = _link_ties(store, valid, now)
    return report


def _link_ties(store: GraphStore, rows: Sequence[_ValidRow], now: datetime) -> tuple[int, list[Rejection]]:
    """Ties may point at rows later in the file, so they are linked once every row is stored."""
    wanted = [(row, tie) for row in rows for tie in row.ties]
    if not wanted:
        return 0, []
    stored_ids = {row.record.id for row in rows}
    unresolved = {tie.b for _, tie in wanted if tie.b not in stored_ids}
    stored_ids |= {business_id for business_id in unresolved if store.get_business(business_id)}
    warnings, ties = [], []
    for row, tie in wanted:
        if tie.b in stored_ids:
            ties.append(tie)
        else:
            warnings.append(
                Rejection(row.line, f"{tie.kind.value.lower()}: no customer with id {tie.b!r}; tie not recorded", tie.a)
            )
    return store.add_ties(ties, now), warnings


def import_file(
    store: GraphStore,
    path: Path,
    *,
    file_format: str | None = None,
    encoding: str = "utf-8",
    ignore_unknown_columns: bool = False,
    default_salesperson: str | None = None,
    dry_run: bool = False,
    on_start: Callable[[int], None] = lambda total: None,
    on_progress: Callable[[int], None] = lambda done: None,
) -> ImportReport:
    """Import one file; raises ImportFileError (writing nothing) if the file as a whole is unreadable."""
    raw_rows, read_rejections = read_file(
        path, file_format=file_format, encoding=encoding, ignore_unknown=ignore_unknown_columns
    )
    on_start(len(raw_rows))
    return import_rows(
        store,
        raw_rows,
        read_rejections=read_rejections,
        default_salesperson=default_salesperson,
        dry_run=dry_run,
        on_progress=on_progress,
    )
