"""Bulk import of customer accounts exported from a CRM (CSV or JSON Lines).

Every row is read, validated and checked for duplicate ids before anything is
written; only valid rows are written, in batches that are each one transaction,
so a row lands whole or not at all. Writes are upserts by external id, so a
second run of the same file reports every row unchanged and writes nothing.

A `status` column archives or restores accounts; without it an archived account stays
archived. A full export can also be synced: the accounts of its salespeople that it no
longer holds are archived (`missing_accounts` lists them first, for a confirmation).
Every write records the accounts it changed as pending, so the worker refreshes the
suggestions they reach.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from graph import BusinessRecord, GraphStore, GraphWriter, Salesperson, StoredBusiness, Tie, TieKind, UpsertOutcome
from graph.records import Job
from netweave.importer.places import gazetteer
from netweave.importer.reader import FORMATS, FileRows, ImportFileError, RawRow, Rejection
from netweave.importer.rows import BusinessRow, error_items, parse_ids, parse_status, source_digest

__all__ = [
    "FORMATS",
    "FileChanged",
    "ImportFileError",
    "ImportReport",
    "PreparedImport",
    "Rejection",
    "RowKey",
    "SyncRefused",
    "import_file",
    "import_rows",
    "missing_accounts",
    "prepare_file",
    "prepare_rows",
    "write_rows",
]

BATCH_SIZE = 500  # rows written per transaction
CHUNK_SIZE = 1000  # rows judged at a time (one store read tells which are unchanged)
UNASSIGNED = "unassigned"  # the book of CRM records that have no owner


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[Rejection] = field(default_factory=list)
    ties_created: int = 0
    archived: list[str] = field(default_factory=list)  # by a status column or by sync
    restored: list[str] = field(default_factory=list)
    dry_run: bool = False
    refresh_job: Job | None = None  # the refresh that takes the changes in (None: none queued)
    ignored_columns: tuple[str, ...] = ()  # the CRM's own columns, of no use here
    # business id -> what its row did, for rows given in memory (a request's items; not a file's rows)
    outcomes: dict[str, UpsertOutcome] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        """Rows written and accounts archived or restored: what the worker has to take in."""
        return self.created + self.updated + len(self.archived) + len(self.restored)

    def count(self, outcome: UpsertOutcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def summary(self) -> str:
        if self.dry_run:
            valid = self.rows - len(self.rejected)
            return f"{self.rows} rows: {valid} valid, {len(self.rejected)} rejected (dry run: nothing written)"
        text = (
            f"{self.rows} rows: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.rejected)} rejected"
        )
        if self.archived or self.restored:
            text += f"; {len(self.archived)} archived, {len(self.restored)} restored"
        return text


@dataclass(frozen=True)
class _ValidRow:
    line: int
    record: BusinessRecord
    salesperson: Salesperson
    ties: tuple[Tie, ...]
    status: str | None  # "active", "archived", or None when the file does not say
    source: str  # digest of the raw row
    names_salesperson: bool = False  # the row gives the salesperson's name (else it is guessed from the email)


@dataclass(frozen=True)
class _UnchangedRow:
    """A row equal (by digest) to the one the account was last imported from: not validated
    again, not written; only its status and ties are applied."""

    line: int
    business_id: str
    salesperson_id: str
    ties: tuple[Tie, ...]
    status: str | None


class SyncRefused(ValueError):
    """A sync cannot tell which accounts are missing from the file."""


class FileChanged(ImportFileError):
    """The file changed between its check and its writing: the rows written so far are whole,
    the rest is not written; import the file again."""


@dataclass(frozen=True, slots=True)
class RowKey:
    """A valid row as judging keeps it: enough to check ownership and to sync, not its record."""

    line: int
    business_id: str
    salesperson_id: str


@dataclass
class PreparedImport:
    """Rows read and judged, nothing written yet. The valid rows themselves are kept in memory
    (`rows`) for a request's items; a file's are read and validated again as they are written
    (`source`), so a large file is never held whole."""

    valid: list[RowKey]
    rejected: list[Rejection]
    total: int
    unchanged: list[_UnchangedRow] = field(default_factory=list)
    warnings: list[Rejection] = field(default_factory=list)  # rows taken, with something to say
    ignored_columns: tuple[str, ...] = ()  # the CRM's own columns, of no use here
    ties: list[tuple[int, tuple[Tie, ...]]] = field(default_factory=list)  # the valid rows' ties, by line
    rows: list[_ValidRow] | None = None
    source: FileRows | None = None
    default_salesperson: str | None = None
    fingerprint: tuple[int, int] | None = None  # the source file's size and mtime when judged

    @property
    def ids(self) -> set[str]:
        """Every account id the file names, in valid, unchanged and rejected rows alike."""
        named = {key.business_id for key in self.valid} | {row.business_id for row in self.unchanged}
        return named | {r.business_id for r in self.rejected if r.business_id}

    @property
    def salespeople(self) -> set[str]:
        return {key.salesperson_id for key in self.valid} | {row.salesperson_id for row in self.unchanged}

    def without(self, refused: Mapping[int, Rejection]) -> PreparedImport:
        """The same import with the rows on these lines rejected instead."""
        return replace(
            self,
            valid=[key for key in self.valid if key.line not in refused],
            rows=None if self.rows is None else [row for row in self.rows if row.line not in refused],
            unchanged=[row for row in self.unchanged if row.line not in refused],
            ties=[(line, ties) for line, ties in self.ties if line not in refused],
            warnings=[w for w in self.warnings if w.line not in refused],
            rejected=sorted([*self.rejected, *refused.values()], key=lambda r: r.line),
        )

    def check_source(self, writing: bool = False) -> None:
        """Raise FileChanged if the file is no longer the one judged (before anything is
        written, or between batches while `writing`)."""
        if self.source is not None and self.source.fingerprint() != self.fingerprint:
            when = "while it was imported; the rows written so far are whole;" if writing else "after it was checked;"
            raise FileChanged(f"{self.source.path.name} changed {when} import it again")

    def batches(self, size: int) -> Iterator[list[_ValidRow]]:
        """The valid rows, `size` at a time, in file order."""
        if self.rows is not None:
            for start in range(0, len(self.rows), size):
                yield self.rows[start : start + size]
            return
        assert self.source is not None
        if not self.valid:
            return
        # The keys are in file order, so the rows to write are found walking both side by side.
        keys = iter(self.valid)
        wanted = next(keys, None)
        chunk: list[tuple[RawRow, RowKey]] = []
        for item in self.source:
            if wanted is not None and isinstance(item, RawRow) and item.line == wanted.line:
                chunk.append((item, wanted))
                wanted = next(keys, None)
                if len(chunk) == size:
                    yield self._validate_again(chunk)
                    self.check_source(writing=True)  # stopped at the first batch after the file changed
                    chunk = []
        if chunk:
            yield self._validate_again(chunk)
        if wanted is not None:
            raise FileChanged(f"{self.source.path.name} changed while it was imported: line {wanted.line} is "
                              "gone; the rows written before it are whole; import it again")  # fmt: skip

    def _validate_again(self, chunk: list[tuple[RawRow, RowKey]]) -> list[_ValidRow]:
        valid, rejected, _ = _validate([raw for raw, _ in chunk], self.default_salesperson)
        # The row must be the one judged: same id, same salesperson (whose book it was checked for).
        keys = {key.line: (key.business_id, key.salesperson_id) for _, key in chunk}
        changed = [r.line for r in rejected] + [
            row.line for row in valid if (row.record.id, row.record.salesperson_id) != keys[row.line]
        ]
        if changed:
            raise FileChanged(f"line {min(changed)} changed while the file was imported; the rows written "
                              "before it are whole; import the file again")  # fmt: skip
        return valid


def _validate(
    raw_rows: Sequence[RawRow], default_salesperson: str | None
) -> tuple[list[_ValidRow], list[Rejection], list[Rejection]]:
    valid, rejected, warnings = [], [], []
    for raw in raw_rows:
        try:
            row = BusinessRow.model_validate(raw.fields)
        except ValidationError as error:
            raw_id = raw.fields.get("id")
            problems = tuple(error_items(error))
            reason = "; ".join(f"{field}: {message}" if field else message for field, message in problems)
            rejected.append(Rejection(raw.line, reason, str(raw_id).strip() if raw_id else None, problems))
            continue
        owner = default_salesperson
        if not (row.salesperson or default_salesperson):
            if "salesperson" not in raw.fields:  # the file names no owners at all
                missing = "missing (add a salesperson column or pass --salesperson)"
                rejected.append(Rejection(raw.line, f"salesperson: {missing}", row.id, (("salesperson", missing),)))
                continue
            owner = UNASSIGNED  # a CRM record without an owner: kept, in a book a manager sees
            warnings.append(
                Rejection(raw.line, f"salesperson: empty; filed under {UNASSIGNED!r} (pass --salesperson to choose)",
                          row.id)
            )  # fmt: skip
        ties = _ties(row.id, row.partners, row.knows)
        record, person = row.to_record(owner), row.to_salesperson(owner)
        if owner == UNASSIGNED:
            person = Salesperson(UNASSIGNED, "Unassigned", None)
        if record.place is not None:
            located = gazetteer().locate(record.place, record.place.postal_code)
            record = replace(record, place=located.place)
            if not located.found:
                warnings.append(Rejection(raw.line, f"location: {located.problem}; shown as location unknown", row.id))
        source = source_digest(raw.fields, default_salesperson)
        valid.append(_ValidRow(raw.line, record, person, ties, row.status, source, row.salesperson_name is not None))
    return valid, rejected, warnings


def _ties(business_id: str, partners: Sequence[str], knows: Sequence[str]) -> tuple[Tie, ...]:
    return tuple(
        [Tie(business_id, other, TieKind.PARTNERS_WITH) for other in partners]
        + [Tie(business_id, other, TieKind.KNOWS) for other in knows]
    )


def _duplicate_ids(prepared: PreparedImport, noun: str) -> dict[int, Rejection]:
    """Rows whose id appears more than once are all rejected: which one is right is the CRM's call."""
    lines_by_id: dict[str, list[int]] = defaultdict(list)
    for key in prepared.valid:
        lines_by_id[key.business_id].append(key.line)
    for row in prepared.unchanged:
        lines_by_id[row.business_id].append(row.line)
    duplicates = {}
    for business_id, lines in lines_by_id.items():
        if len(lines) == 1:
            continue
        for line in lines:
            others = ", ".join(str(n) for n in sorted(lines) if n != line)
            if noun == "line":
                reason = f"duplicate id (also on line {others}); keep one row per id"
            else:
                reason = f"duplicate id (also {noun} {others}); keep one per id"
            duplicates[line] = Rejection(line, reason, business_id, (("id", reason),))
    return duplicates


def _judge(
    items: Iterable[RawRow | Rejection],
    *,
    default_salesperson: str | None,
    store: GraphStore | None,
    keep_rows: bool,
    row_noun: str,
    on_chunk: Callable[[], None] = lambda: None,
) -> PreparedImport:
    """Judge rows a chunk at a time, keeping of each valid row its key (and the row itself
    when `keep_rows`); then reject repeated ids."""
    prepared = PreparedImport([], [], 0, default_salesperson=default_salesperson, rows=[] if keep_rows else None)
    chunk: list[RawRow] = []

    def take() -> None:
        unchanged, to_validate = _recognise_unchanged(chunk, default_salesperson, store)
        valid, invalid, warnings = _validate(to_validate, default_salesperson)
        prepared.unchanged += unchanged
        prepared.rejected += invalid
        prepared.warnings += warnings
        prepared.valid += [RowKey(row.line, row.record.id, sys.intern(row.record.salesperson_id)) for row in valid]
        prepared.ties += [(row.line, row.ties) for row in valid if row.ties]
        if prepared.rows is not None:
            prepared.rows += valid
        chunk.clear()
        on_chunk()

    for item in items:
        prepared.total += 1
        if isinstance(item, Rejection):
            prepared.rejected.append(item)
            continue
        chunk.append(item)
        if len(chunk) == CHUNK_SIZE:
            take()
    if chunk:
        take()
    prepared.rejected.sort(key=lambda r: r.line)
    return prepared.without(_duplicate_ids(prepared, row_noun))


def prepare_rows(
    raw_rows: Sequence[RawRow],
    *,
    read_rejections: Sequence[Rejection] = (),
    default_salesperson: str | None = None,
    store: GraphStore | None = None,
    ignored_columns: Sequence[str] = (),
    row_noun: str = "line",
) -> PreparedImport:
    """Validate every row and reject duplicate ids; writes nothing. With a store, rows equal to
    the ones their accounts were last imported from are recognised by digest and not validated
    again (a re-import of an unchanged export is then mostly a scan). `row_noun` is what a
    row's number is called in messages ("line" in a file, "item" in an API request)."""
    prepared = _judge(
        [*read_rejections, *raw_rows],
        default_salesperson=default_salesperson,
        store=store,
        keep_rows=True,
        row_noun=row_noun,
    )
    prepared.ignored_columns = tuple(ignored_columns)
    return prepared


def _recognise_unchanged(
    raw_rows: Sequence[RawRow], default_salesperson: str | None, store: GraphStore | None
) -> tuple[list[_UnchangedRow], list[RawRow]]:
    if store is None:
        return [], list(raw_rows)
    ids = [str(raw.fields.get("id") or "").strip() for raw in raw_rows]
    counts = Counter(ids)
    candidates = {i for i in ids if i and counts[i] == 1}  # a repeated id is judged (and rejected) in full
    known = store.source_digests(sorted(candidates))
    unchanged, rest = [], []
    for raw, business_id in zip(raw_rows, ids, strict=True):
        stored = known.get(business_id)
        if stored is None or stored[0] != source_digest(raw.fields, default_salesperson):
            rest.append(raw)
            continue
        try:  # both parsed as when the row was first validated; a row that parsed then parses now
            status = parse_status(raw.fields.get("status"))
            ties = _ties(business_id, parse_ids(raw.fields.get("partners")), parse_ids(raw.fields.get("knows")))
        except ValueError:
            rest.append(raw)
            continue
        unchanged.append(_UnchangedRow(raw.line, business_id, stored[1], ties, status))
    return unchanged, rest


def missing_accounts(
    store: GraphStore, prepared: PreparedImport, salespeople: Sequence[str] | None = None
) -> list[StoredBusiness]:
    """Active accounts of the file's salespeople (or of `salespeople`) that the file does not
    name: what a sync of a full export would archive. Raises SyncRefused when a rejected row
    has no id, since the account it stands for cannot be told apart."""
    if unnamed := [r for r in prepared.rejected if not r.business_id]:
        lines = ", ".join(str(r.line) for r in unnamed[:5])
        raise SyncRefused(
            f"{len(unnamed)} rejected row(s) have no id (line {lines}): cannot tell which accounts are missing"
        )
    named = prepared.ids
    missing = []
    # The unassigned book gathers every file's unowned records: synced only when asked for by name.
    people = set(salespeople) if salespeople is not None else prepared.salespeople - {UNASSIGNED}
    for salesperson in sorted(people):
        for business in store.list_businesses(salesperson_id=salesperson, limit=None):
            if business.id not in named:
                missing.append(business)
    return missing


def write_rows(
    store: GraphStore,
    prepared: PreparedImport,
    *,
    dry_run: bool = False,
    archive_missing: Sequence[str] = (),
    now: datetime | None = None,
    on_progress: Callable[[int], None] = lambda done: None,
) -> ImportReport:
    """Upsert the valid rows (a batch per transaction), apply their status, link their ties,
    then archive `archive_missing` (as `missing_accounts` listed them)."""
    now = now or datetime.now(UTC)
    report = ImportReport(
        rows=prepared.total,
        dry_run=dry_run,
        rejected=list(prepared.rejected),
        warnings=list(prepared.warnings),
        ignored_columns=prepared.ignored_columns,
    )
    on_progress(len(prepared.rejected))
    if dry_run:
        on_progress(len(prepared.valid) + len(prepared.unchanged))
        return report

    prepared.check_source()
    report.unchanged += len(prepared.unchanged)
    if prepared.rows is not None:
        report.outcomes.update((row.business_id, UpsertOutcome.UNCHANGED) for row in prepared.unchanged)
    for start in range(0, len(prepared.unchanged), BATCH_SIZE):
        same = prepared.unchanged[start : start + BATCH_SIZE]
        _warn_archived(store, [(row.line, row.business_id) for row in same if row.status is None], report)
        statuses = [(row.business_id, row.status) for row in same if row.status is not None]
        if statuses:  # no write at all for a file without a status column
            archived, restored = store.write(lambda tx, statuses=statuses: _apply_status(tx, statuses, now))
            report.archived += archived
            report.restored += restored
        on_progress(len(same))

    named: set[str] = set()
    for batch in prepared.batches(BATCH_SIZE):
        _write_salespeople(store, batch, named)
        _warn_archived(store, [(row.line, row.record.id) for row in batch if row.status is None], report)
        outcomes, archived, restored = store.write(lambda tx, batch=batch: _write_batch(tx, batch, now))
        for row, outcome in zip(batch, outcomes, strict=True):
            report.count(outcome)
            if prepared.rows is not None:  # a request's items, each answered; not a file's millions
                report.outcomes[row.record.id] = outcome
        report.archived += archived
        report.restored += restored
        on_progress(len(batch))

    tied = [*prepared.ties, *((row.line, row.ties) for row in prepared.unchanged if row.ties)]
    if tied:
        report.ties_created, ties_warnings = _link_ties(
            store,
            tied,
            # stored now (a rejected row's id is not, unless it was before: looked up like any other)
            {key.business_id for key in prepared.valid} | {row.business_id for row in prepared.unchanged},
            now,
        )
        report.warnings += ties_warnings
    if archive_missing:
        report.archived += store.write(lambda tx: tx.set_archived(list(archive_missing), True, now))
    return report


def _write_salespeople(store: GraphStore, batch: Sequence[_ValidRow], named: set[str]) -> None:
    """The batch's salespeople, before its rows. A name a row gives is written; a name guessed
    from an email only names a new salesperson (a row without a name column must not rename
    "Dana Reyes" to "Dana"). `named` collects the ids written with a name so far."""
    people = {row.salesperson.id: row.salesperson for row in batch if row.names_salesperson}
    guessed = {row.salesperson.id: row.salesperson for row in batch if row.salesperson.id not in people}
    unnamed = [i for i in guessed if i not in named]
    stored = store.get_salespeople(unnamed) if unnamed else {}  # one read, not one a salesperson
    people |= {i: guessed[i] for i in unnamed if i not in stored}
    if people:
        store.upsert_salespeople(list(people.values()))
    named.update(i for i, person in people.items() if i not in guessed)


def _warn_archived(store: GraphStore, rows: Sequence[tuple[int, str]], report: ImportReport) -> None:
    """Rows without a status for accounts that are archived: they stay archived, and the user is told."""
    archived = store.archived_ids([business_id for _, business_id in rows])
    for line, business_id in rows:
        if business_id in archived:
            report.warnings.append(
                Rejection(line, "account is archived: updated, but it stays archived (add a status column "
                          "or run `customers restore`)", business_id)
            )  # fmt: skip


def _apply_status(
    tx: GraphWriter, rows: Sequence[tuple[str, str | None]], now: datetime
) -> tuple[list[str], list[str]]:
    archive = [business_id for business_id, status in rows if status == "archived"]
    restore = [business_id for business_id, status in rows if status == "active"]
    archived = tx.set_archived(archive, True, now) if archive else []
    restored = tx.set_archived(restore, False, now) if restore else []
    return archived, restored


def _write_batch(
    tx: GraphWriter, batch: Sequence[_ValidRow], now: datetime
) -> tuple[list[UpsertOutcome], list[str], list[str]]:
    outcomes = tx.upsert_businesses([row.record for row in batch], now, {row.record.id: row.source for row in batch})
    archived, restored = _apply_status(tx, [(row.record.id, row.status) for row in batch], now)
    return outcomes, archived, restored


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
    prepared = prepare_rows(
        raw_rows, read_rejections=read_rejections, default_salesperson=default_salesperson, store=store
    )
    return write_rows(store, prepared, dry_run=dry_run, now=now, on_progress=on_progress)


def _link_ties(
    store: GraphStore, rows: Sequence[tuple[int, Sequence[Tie]]], in_file: set[str], now: datetime
) -> tuple[int, list[Rejection]]:
    """Ties may point at rows later in the file, so they are linked once every row is stored."""
    wanted = [(line, tie) for line, ties in rows for tie in ties]
    if not wanted:
        return 0, []
    unresolved = sorted({tie.b for _, tie in wanted if tie.b not in in_file})
    known = in_file | set(store.get_businesses(unresolved)) if unresolved else in_file
    warnings, ties = [], []
    for line, tie in sorted(wanted, key=lambda item: item[0]):
        if tie.b in known:
            ties.append(tie)
        else:
            warnings.append(
                Rejection(line, f"{tie.kind.value.lower()}: no customer with id {tie.b!r}; tie not recorded", tie.a)
            )
    return store.add_ties(ties, now), warnings


def prepare_file(
    path: Path,
    *,
    store: GraphStore | None = None,
    file_format: str | None = None,
    encoding: str = "utf-8",
    ignore_unknown_columns: bool = False,
    default_salesperson: str | None = None,
    on_read: Callable[[int], None] = lambda read: None,
) -> PreparedImport:
    """Read and judge one file as a stream (it is read again as it is written); raises
    ImportFileError if the file as a whole is unreadable. `on_read` gets the bytes read per step."""
    source = FileRows(path, file_format=file_format, encoding=encoding, ignore_unknown=ignore_unknown_columns)
    fingerprint = source.fingerprint()
    reported = 0

    def read_progress() -> None:
        nonlocal reported
        on_read(source.bytes_read - reported)
        reported = source.bytes_read

    prepared = _judge(
        source,
        default_salesperson=default_salesperson,
        store=store,
        keep_rows=False,
        row_noun="line",
        on_chunk=read_progress,
    )
    prepared.source, prepared.fingerprint, prepared.ignored_columns = source, fingerprint, source.ignored
    return prepared


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
    prepared = prepare_file(
        path,
        store=store,
        file_format=file_format,
        encoding=encoding,
        ignore_unknown_columns=ignore_unknown_columns,
        default_salesperson=default_salesperson,
    )
    on_start(prepared.total)
    return write_rows(store, prepared, dry_run=dry_run, on_progress=on_progress)
