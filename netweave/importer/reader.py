"""Read CSV or JSON Lines exports into raw rows keyed by import column, with line numbers.

Nothing here judges values (that is `rows.py`); this layer only finds rows, maps
headers, and rejects what cannot be read at all: bad encoding, broken JSON,
ragged CSV rows, unknown fields.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
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


def read_file(
    path: Path, *, file_format: str | None = None, encoding: str = "utf-8", ignore_unknown: bool = False
) -> ReadResult:
    """Rows that could be read, rejections for those that could not, and the CRM's own
    columns that were ignored."""
    path = Path(path)
    # surrogateescape keeps undecodable bytes so the row that holds them can be named.
    try:
        codecs.lookup(encoding)
        text = path.read_bytes().decode("utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding,
                                        errors="surrogateescape")  # fmt: skip
    except LookupError:
        raise ImportFileError(f"unknown encoding {encoding!r}") from None
    except OSError as error:
        raise ImportFileError(f"cannot read {path}: {error.strerror}") from None
    kind = detect_format(path, file_format)
    if kind == "csv":
        return _read_csv(text, encoding, ignore_unknown, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    return _read_jsonl(text, encoding, ignore_unknown)


def _read_csv(text: str, encoding: str, ignore_unknown: bool, delimiter: str) -> ReadResult:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("the file is empty") from None
    except csv.Error as error:
        raise ImportFileError(f"unreadable header: {error}", line=1) from None
    if problem := _encoding_problem(",".join(header), encoding):
        raise ImportFileError(f"header: {problem}", line=1)

    columns: list[str | None] = []
    seen: dict[str, str] = {}
    unknown, ignored = [], []
    for name in header:
        canonical = canonical_column(name) if name.strip() else None
        if canonical is None and is_crm_extra(name):
            ignored.append(name)
        elif canonical is None and name.strip():
            unknown.append(name)
        elif canonical in seen:
            raise ImportFileError(
                f"columns {seen[canonical]!r} and {name!r} both mean {canonical!r}; keep one of them", line=1
            )
        elif canonical:
            seen[canonical] = name
        columns.append(canonical)
    if unknown and not ignore_unknown:
        raise ImportFileError(_unknown_message(unknown), line=1)
    missing = [c for c in ("id", "name") if c not in seen]
    if missing:
        raise ImportFileError(f"no column for {' and '.join(missing)} (required)", line=1)

    rows, rejections = [], []
    next_line = reader.line_num + 1
    while True:
        line = next_line
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            rejections.append(Rejection(line, f"unreadable CSV: {error}"))
            next_line = reader.line_num + 1
            continue
        next_line = reader.line_num + 1
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(columns):
            rejections.append(
                Rejection(line, f"{len(values)} values but the header has {len(columns)} columns (a stray comma?)")
            )
            continue
        fields = {c: v for c, v in zip(columns, values, strict=False) if c is not None}
        if problem := next((p for v in values if (p := _encoding_problem(v, encoding))), None):
            rejections.append(Rejection(line, problem, _printable(fields.get("id"))))
            continue
        rows.append(RawRow(line, fields))
    return ReadResult(rows, rejections, tuple(ignored))


def _printable(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return _UNDECODABLE.sub("?", value.strip())


def _read_jsonl(text: str, encoding: str, ignore_unknown: bool) -> ReadResult:
    rows, rejections = [], []
    ignored: dict[str, None] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if problem := _encoding_problem(raw, encoding):
            rejections.append(Rejection(number, problem))
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as error:
            rejections.append(Rejection(number, f"not valid JSON: {error.msg} at column {error.colno}"))
            continue
        if not isinstance(item, dict):
            rejections.append(Rejection(number, "each line must be a JSON object"))
            continue
        fields: dict[str, Any] = {}
        unknown = []
        clash = None
        for key, value in item.items():
            canonical = canonical_column(key)
            if canonical is None and is_crm_extra(key):
                ignored.setdefault(key)
            elif canonical is None:
                unknown.append(key)
            elif canonical in fields:
                clash = f"fields {key!r} and another both mean {canonical!r}; keep one of them"
            else:
                fields[canonical] = value
        business_id = _printable(fields.get("id")) if isinstance(fields.get("id"), str) else None
        if clash:
            rejections.append(Rejection(number, clash, business_id))
        elif unknown and not ignore_unknown:
            rejections.append(Rejection(number, _unknown_message(unknown), business_id))
        else:
            rows.append(RawRow(number, fields))
    return ReadResult(rows, rejections, tuple(ignored))
