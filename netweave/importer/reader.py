"""Read CSV or JSON Lines exports into raw rows keyed by import column, with line numbers.

Nothing here judges values (that is `rows.py`); this layer only finds rows, maps
headers, and rejects what cannot be read at all: bad encoding, broken JSON,
ragged CSV rows, unknown fields.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netweave.importer.columns import canonical_column, is_crm_extra, suggest_column

FORMATS = ("csv", "jsonl")
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class RawRow:
    line: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    business_id: str | None = None
    problems: tuple[tuple[str, str], ...] = ()  # (field, what is wrong with it), when a field is to blame

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (id {self.business_id!r})" if self.business_id else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ReadResult:
    rows: list[RawRow]
    rejections: list[Rejection]
    ignored: tuple[str, ...] = ()  # columns a CRM adds that Netweave has no use for


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; nothing was written."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


def detect_format(path: Path, declared: str | None = None) -> str:
    if declared:
        return declared
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ImportFileError(f"cannot tell the format of {path.name!r} from its name; pass --format csv or jsonl")


def _encoding_problem(value: str, encoding: str) -> str | None:
    match = _UNDECODABLE.search(value)
    if not match:
        return None
    byte = ord(match.group()) - 0xDC00
    return (
        f"text is not valid {encoding} (byte 0x{byte:02x}); "
        "re-export the file as UTF-8, or pass --encoding with the file's real encoding (e.g. cp1252)"
    )


def _unknown_message(names: list[str]) -> str:
    parts = []
    for name in names:
        hint = suggest_column(name)
        parts.append(f"{name!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
    return (
        "unknown column(s) " + ", ".join(parts) + "; rename them to a documented column "
        "(see `flask --app app import --help`) or pass --ignore-unknown-columns"
    )


class FileRows:
    """A file's rows, read as a stream: each iteration reads the file again from disk, so an
    import can judge every row first and write after, holding one row at a time (never the
    whole file). Constructing it reads the header, raising ImportFileError if the file as a
    whole cannot be imported. Iterating yields RawRow and Rejection in file order;
    `ignored` holds the CRM's own columns seen so far, `bytes_read` how far the reading got."""

    def __init__(
        self, path: Path, *, file_format: str | None = None, encoding: str = "utf-8", ignore_unknown: bool = False
    ):
        self.path = Path(path)
        self.kind = detect_format(self.path, file_format)
        self.encoding = encoding
        self.ignore_unknown = ignore_unknown
        self.delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ImportFileError(f"unknown encoding {encoding!r}") from None
        self.size = self._stat().st_size
        self.bytes_read = 0
        self._ignored: dict[str, None] = {}
        self._raw: Any = None
        if self.kind == "csv":
            with self._open() as text:
                self._columns = self._csv_columns(csv.reader(text, delimiter=self.delimiter, strict=True))

    @property
    def ignored(self) -> tuple[str, ...]:
        return tuple(self._ignored)

    def fingerprint(self) -> tuple[int, int]:
        """Size and modification time: a file that changed between two readings differs here."""
        stat = self._stat()
        return stat.st_size, stat.st_mtime_ns

    def _stat(self) -> os.stat_result:
        try:
            return self.path.stat()
        except OSError as error:
            raise ImportFileError(f"cannot read {self.path}: {error.strerror}") from None

    def _open(self) -> io.TextIOWrapper:
        try:
            self._raw = self.path.open("rb")
        except OSError as error:
            raise ImportFileError(f"cannot read {self.path}: {error.strerror}") from None
        # surrogateescape keeps undecodable bytes so the row that holds them can be named.
        encoding = "utf-8-sig" if self.encoding.lower() in ("utf-8", "utf8") else self.encoding
        return io.TextIOWrapper(self._raw, encoding=encoding, errors="surrogateescape", newline="")

    def _progress(self) -> None:
        if self._raw is not None and not self._raw.closed:
            self.bytes_read = self._raw.tell()

    def __iter__(self) -> Iterator[RawRow | Rejection]:
        self.bytes_read = 0
        with self._open() as text:
            if self.kind == "csv":
                yield from self._csv_rows(text)
            else:
                yield from self._jsonl_rows(text)
        self.bytes_read = self.size

    def _csv_columns(self, reader: Any) -> list[str | None]:
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError("the file is empty") from None
        except csv.Error as error:
            raise ImportFileError(f"unreadable header: {error}", line=1) from None
        if problem := _encoding_problem(",".join(header), self.encoding):
            raise ImportFileError(f"header: {problem}", line=1)

        columns: list[str | None] = []
        seen: dict[str, str] = {}
        unknown = []
        for name in header:
            canonical = canonical_column(name) if name.strip() else None
            if canonical is None and is_crm_extra(name):
                self._ignored.setdefault(name)
            elif canonical is None and name.strip():
                unknown.append(name)
            elif canonical in seen:
                raise ImportFileError(
                    f"columns {seen[canonical]!r} and {name!r} both mean {canonical!r}; keep one of them", line=1
                )
            elif canonical:
                seen[canonical] = name
            columns.append(canonical)
        if unknown and not self.ignore_unknown:
            raise ImportFileError(_unknown_message(unknown), line=1)
        missing = [c for c in ("id", "name") if c not in seen]
        if missing:
            raise ImportFileError(f"no column for {' and '.join(missing)} (required)", line=1)
        return columns

    def _csv_rows(self, text: io.TextIOWrapper) -> Iterator[RawRow | Rejection]:
        reader = csv.reader(text, delimiter=self.delimiter, strict=True)
        columns = self._csv_columns(reader)
        next_line = reader.line_num + 1
        for count in itertools.count(1):
            line = next_line
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                yield Rejection(line, f"unreadable CSV: {error}")
                next_line = reader.line_num + 1
                continue
            next_line = reader.line_num + 1
            if count % 256 == 0:
                self._progress()
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(columns):
                yield Rejection(
                    line, f"{len(values)} values but the header has {len(columns)} columns (a stray comma?)"
                )
                continue
            fields = {c: v for c, v in zip(columns, values, strict=False) if c is not None}
            if problem := next((p for v in values if (p := _encoding_problem(v, self.encoding))), None):
                yield Rejection(line, problem, _printable(fields.get("id")))
                continue
            yield RawRow(line, fields)

    def _jsonl_rows(self, text: io.TextIOWrapper) -> Iterator[RawRow | Rejection]:
        # Lines end at \n, \r\n or \r only: a JSON string may hold U+2028 and the like.
        for number, raw in enumerate(text, start=1):
            if number % 256 == 0:
                self._progress()
            if not raw.strip():
                continue
            if problem := _encoding_problem(raw, self.encoding):
                yield Rejection(number, problem)
                continue
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as error:
                yield Rejection(number, f"not valid JSON: {error.msg} at column {error.colno}")
                continue
            if not isinstance(item, dict):
                yield Rejection(number, "each line must be a JSON object")
                continue
            fields: dict[str, Any] = {}
            unknown = []
            clash = None
            for key, value in item.items():
                canonical = canonical_column(key)
                if canonical is None and is_crm_extra(key):
                    self._ignored.setdefault(key)
                elif canonical is None:
                    unknown.append(key)
                elif canonical in fields:
                    clash = f"fields {key!r} and another both mean {canonical!r}; keep one of them"
                else:
                    fields[canonical] = value
            business_id = _printable(fields.get("id")) if isinstance(fields.get("id"), str) else None
            if clash:
                yield Rejection(number, clash, business_id)
            elif unknown and not self.ignore_unknown:
                yield Rejection(number, _unknown_message(unknown), business_id)
            else:
                yield RawRow(number, fields)


def read_file(
    path: Path, *, file_format: str | None = None, encoding: str = "utf-8", ignore_unknown: bool = False
) -> ReadResult:
    """Every row of a (small) file at once: rows that could be read, rejections for those
    that could not, and the CRM's own columns that were ignored."""
    source = FileRows(path, file_format=file_format, encoding=encoding, ignore_unknown=ignore_unknown)
    rows, rejections = [], []
    for item in source:
        (rows if isinstance(item, RawRow) else rejections).append(item)
    return ReadResult(rows, rejections, source.ignored)


def _printable(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return _UNDECODABLE.sub("?", value.strip())
