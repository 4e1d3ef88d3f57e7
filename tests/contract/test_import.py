"""Importing CRM exports, end to end through the importer, on both backends."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graph import Tie, TieKind
from netweave import importer
from netweave.importer import (
    UNASSIGNED,
    FileChanged,
    ImportFileError,
    import_file,
    missing_accounts,
    prepare_file,
)

HEADER = "Account ID,Company Name,Owner,Industry,About,Email,Employees,City,State,Metro,Partners\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_a_clean_csv_imports_every_row_and_a_rerun_changes_nothing(store, tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        HEADER
        + "A-1,Petal & Stem,dana@example.com,Florist,Wedding flowers,hello@petal.com,6,Minneapolis,MN,Twin Cities,A-2\n"
        + 'A-2,Lakeside Venue,dana@example.com,Wedding Venue,"Weddings, 200 guests",,40,Saint Paul,MN,Twin Cities,\n',
    )
    first = import_file(store, path)
    assert (first.created, first.updated, first.unchanged, first.rejected) == (2, 0, 0, [])
    assert first.ties_created == 1
    stored = store.get_business("A-1").record
    assert stored.name == "Petal & Stem"
    assert stored.categories == ("Florist",)
    assert stored.place.metro == "Twin Cities"
    assert stored.salesperson_id == "dana@example.com"
    assert store.ties_of("A-2") == [Tie("A-1", "A-2", TieKind.PARTNERS_WITH)]

    again = import_file(store, path)
    assert (again.created, again.updated, again.unchanged, again.ties_created) == (0, 0, 2, 0)
    assert store.get_business("A-1").updated_at == store.get_business("A-1").created_at


def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_stored(store, tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        HEADER
        + "A-1,Good One,dana@example.com,Florist,,,,,,,\n"
        + ",No Id Inc,dana@example.com,,,,,,,,\n"
        + "A-3,,dana@example.com,,,,,,,,\n"
        + "A-4,Bad Mail,dana@example.com,,,bob@,,,,,\n"
        + "A-5,Bad Size,dana@example.com,,,,a dozen,,,,\n"
        + "A-6,No Town,dana@example.com,,,,,,MN,,\n"
        + "A-7,Twice,dana@example.com,,,,,,,,\n"
        + "A-8,Good Two,dana@example.com,,,,,,,,\n"
        + "A-7,Twice Again,dana@example.com,,,,,,,,\n"
        + "A-9,Too,many,values,here,x,1,c,s,m,p,extra\n",
    )
    report = import_file(store, path)
    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 10, 11]
    assert reasons[3].startswith("id: missing")
    assert reasons[4].startswith("name: missing")
    assert "email" in reasons[5] and "'bob@' is not a valid email address" in reasons[5]
    assert "employees" in reasons[6] and "'a dozen'" in reasons[6]
    assert "city: required" in reasons[7]
    assert reasons[8] == "duplicate id (also on line 10); keep one row per id"
    assert reasons[10] == "duplicate id (also on line 8); keep one row per id"
    assert "12 values but the header has 11 columns" in reasons[11]
    assert (report.created, report.rows) == (2, 10)
    assert sorted(b.id for b in store.list_businesses()) == ["A-1", "A-8"]


def test_rows_that_are_not_utf8_are_rejected_by_line(store, tmp_path):
    body = (HEADER + "A-1,Café Lumière,dana@example.com,,,,,,,,\n").encode("cp1252")
    body += b"A-2,Plain Name,dana@example.com,,,,,,,,\n"
    path = write(tmp_path, "latin.csv", body)
    report = import_file(store, path)
    assert [(r.line, r.business_id) for r in report.rejected] == [(2, "A-1")]
    assert "not valid utf-8 (byte 0xe9)" in report.rejected[0].reason
    assert report.created == 1

    fixed = import_file(store, path, encoding="cp1252")
    assert fixed.created == 1 and fixed.unchanged == 1
    assert store.get_business("A-1").record.name == "Café Lumière"


def test_unknown_columns_stop_the_import_before_anything_is_written(store, tmp_path):
    path = write(tmp_path, "typo.csv", "id,name,emial,shoe size\nA-1,Alpha,a@b.com,9\n")
    with pytest.raises(ImportFileError) as caught:
        import_file(store, path)
    message = str(caught.value)
    assert message.startswith("line 1: unknown column(s) 'emial' (did you mean 'email'?), 'shoe size'")
    assert store.count_businesses() == 0

    report = import_file(store, path, ignore_unknown_columns=True, default_salesperson="dana@example.com")
    assert report.created == 1 and store.get_business("A-1").record.email is None


def test_a_file_without_id_or_name_columns_is_refused(store, tmp_path):
    path = write(tmp_path, "noid.csv", "company,city\nAlpha,Austin\n")
    with pytest.raises(ImportFileError, match="no column for id"):
        import_file(store, path)


def test_rows_without_a_salesperson_need_a_default(store, tmp_path):
    path = write(tmp_path, "orphans.csv", "id,name\nA-1,Alpha\n")
    report = import_file(store, path)
    assert [r.reason for r in report.rejected] == [
        "salesperson: missing (add a salesperson column or pass --salesperson)"
    ]
    report = import_file(store, path, default_salesperson="Dana@Example.com")
    assert report.created == 1
    assert store.get_business("A-1").record.salesperson_id == "dana@example.com"


def test_json_lines_import_with_per_line_errors(store, tmp_path):
    lines = [
        json.dumps({"id": "J-1", "name": "Alpha", "owner": "dana@example.com", "categories": ["Florist", "Gifts"]}),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"id": "J-2", "name": "Beta", "owner": "dana@example.com", "colour": "red"}),
        json.dumps(
            {"id": 3, "name": "Gamma", "owner": "dana@example.com", "employees": 12, "knows": ["J-1", "nope", "J-2"]}
        ),
    ]
    path = write(tmp_path, "accounts.jsonl", "\n".join(lines) + "\n")
    report = import_file(store, path)
    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [3, 4, 5]
    assert reasons[3].startswith("not valid JSON")
    assert reasons[4] == "each line must be a JSON object"
    assert reasons[5].startswith("unknown column(s) 'colour'")
    assert store.get_business("J-1").record.categories == ("Florist", "Gifts")
    assert store.get_business("3").record.employees == 12
    assert store.ties_of("3") == [Tie("3", "J-1", TieKind.KNOWS)]
    assert [str(w) for w in report.warnings] == [  # J-2's row was rejected: no such customer either
        "line 6 (id '3'): knows: no customer with id 'nope'; tie not recorded",
        "line 6 (id '3'): knows: no customer with id 'J-2'; tie not recorded",
    ]


def test_a_changed_row_is_updated_and_others_stay_unchanged(store, tmp_path):
    original = HEADER + "A-1,Alpha,dana@example.com,Florist,,,,,,,\nA-2,Beta,dana@example.com,,,,,,,,\n"
    import_file(store, write(tmp_path, "v1.csv", original))
    report = import_file(store, write(tmp_path, "v2.csv", original.replace("Beta", "Beta Bakery")))
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    assert (report.updated, report.unchanged, report.changes) == (1, 1, 1)
    assert store.get_business("A-2").record.name == "Beta Bakery"


def test_dry_run_checks_everything_and_writes_nothing(store, tmp_path):
    path = write(tmp_path, "a.csv", HEADER + "A-1,Alpha,dana@example.com,,,,,,,,\nA-2,,x@example.com,,,,,,,,\n")
    report = import_file(store, path, dry_run=True)
    assert report.summary() == "2 rows: 1 valid, 1 rejected (dry run: nothing written)"
    assert store.count_businesses() == 0


def first_now() -> datetime:
    return datetime.now(UTC)


def test_a_reimport_recognises_unchanged_rows_by_digest_and_still_applies_status_and_ties(store, tmp_path):
    path = tmp_path / "book.csv"
    path.write_text(
        "id,name,owner,partners,status\nA-1,Alpha,dana@example.com,A-2,active\nA-2,Beta,dana@example.com,,\n"
    )
    first = import_file(store, path)
    assert (first.created, first.ties_created) == (2, 1)
    store.write(lambda tx: tx.set_archived(["A-1", "A-2"], True, first_now()))
    store.write(lambda tx: tx.remove_ties([Tie("A-1", "A-2", TieKind.PARTNERS_WITH)], first_now()))
    again = import_file(store, path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert again.restored == ["A-1"], "A-1's status column still counts"
    assert store.get_business("A-2").archived_at is not None and "stays archived" in again.warnings[0].reason
    assert again.ties_created == 1, "and its ties are linked again"
    # A record written another way (not from this file) loses its digest: the file row is judged again.
    store.upsert_businesses([replace(store.get_business("A-2").record, name="Beta renamed")], first_now())
    third = import_file(store, path)
    assert (third.updated, third.unchanged) == (1, 1)
    assert store.get_business("A-2").record.name == "Beta"


def test_places_are_located_from_the_address_and_what_is_not_is_warned_about(store, tmp_path):
    text = (
        "id,name,salesperson,city,state,zip,metro\n"
        "P-1,Alpha,dana@example.com,Saint Paul,Minnesota,55102,Twin Cities\n"
        "P-2,Beta,dana@example.com,Nowheresville,CO,,\n"
    )
    report = import_file(store, write(tmp_path, "places.csv", text))
    assert report.created == 2
    assert [str(w) for w in report.warnings] == [
        "line 3 (id 'P-2'): location: 'Nowheresville, CO, US' was not found (no coordinates: add latitude and "
        "longitude columns); shown as location unknown"
    ]
    alpha = store.get_business("P-1").record.place
    assert (alpha.region, alpha.country, alpha.metro, alpha.postal_code) == ("MN", "US", "Twin Cities", "55102")
    assert alpha.located and round(alpha.lat) == 45
    beta = store.get_business("P-2").record.place
    assert (beta.city, beta.region, beta.country) == ("Nowheresville", "CO", "US") and not beta.located


def test_unowned_records_go_to_the_unassigned_book_which_a_sync_leaves_alone(store, tmp_path):
    text = "id,name,salesperson\nU-1,Alpha,dana@example.com\nU-2,Beta,\n"
    report = import_file(store, write(tmp_path, "owners.csv", text))
    assert [str(w) for w in report.warnings] == [
        "line 3 (id 'U-2'): salesperson: empty; filed under 'unassigned' (pass --salesperson to choose)"
    ]
    assert store.get_business("U-2").record.salesperson_id == UNASSIGNED
    export = prepare_file(write(tmp_path, "dana.csv", "id,name,salesperson\nU-1,Alpha,dana@example.com\n"), store=store)
    assert missing_accounts(store, export) == [], "another file's unowned record is not this export's to archive"
    assert [b.id for b in missing_accounts(store, export, salespeople=[UNASSIGNED])] == ["U-2"]


def test_a_file_without_names_does_not_rename_a_salesperson_it_names_by_email(store, tmp_path):
    named = write(
        tmp_path, "named.csv", "id,name,salesperson,salesperson_name\nA-1,Alpha,dana@example.com,Dana Reyes\n"
    )
    import_file(store, named)
    bare = write(
        tmp_path, "bare.csv", "id,name,salesperson\nA-2,Beta,dana@example.com\nA-3,Gamma,new.rep@example.com\n"
    )
    import_file(store, bare)
    assert store.get_salesperson("dana@example.com").name == "Dana Reyes"
    assert store.get_salesperson("new.rep@example.com").name == "New Rep"  # a new one is named from the email


def _rows(count: int, start: int = 0, name: str = "Shop") -> str:
    return "".join(f"S-{i},{name} {i},dana@example.com,Florist,,,,,,,\n" for i in range(start, start + count))


def test_a_file_is_judged_as_a_stream_and_written_in_batches(store, tmp_path, monkeypatch):
    """A file's rows are not held in memory: they are read again, batch by batch, to be written.
    Chunks and batches of a few rows make every boundary fall inside the file."""
    monkeypatch.setattr(importer, "CHUNK_SIZE", 3)
    monkeypatch.setattr(importer, "BATCH_SIZE", 2)
    path = write(tmp_path, "shops.csv", HEADER + _rows(6) + "S-bad,,dana@example.com,,,,,,,,\n" + _rows(4, 6))
    prepared = prepare_file(path, store=store)
    assert prepared.rows is None
    assert [key.business_id for key in prepared.valid] == [f"S-{i}" for i in range(10)]
    report = importer.write_rows(store, prepared)
    assert (report.rows, report.created, [r.line for r in report.rejected]) == (11, 10, [8])
    assert sorted(store.get_businesses([f"S-{i}" for i in range(10)])) == sorted(f"S-{i}" for i in range(10))
    assert store.get_business("S-9").record.name == "Shop 9"


def test_an_id_repeated_in_another_chunk_is_rejected_even_where_its_row_is_unchanged(store, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK_SIZE", 2)
    import_file(store, write(tmp_path, "v1.csv", HEADER + _rows(3)))
    # S-0 as it was (unchanged by digest) on line 2, and S-0 again, changed, four rows later.
    path = write(tmp_path, "v2.csv", HEADER + _rows(3) + _rows(2, 3) + "S-0,Shop Renamed,dana@example.com,,,,,,,,\n")
    report = import_file(store, path)
    assert [(r.line, r.business_id) for r in report.rejected] == [(2, "S-0"), (7, "S-0")]
    assert "also on line 7" in report.rejected[0].reason
    assert store.get_business("S-0").record.name == "Shop 0"
    assert (report.created, report.unchanged) == (2, 2)


def test_a_file_changed_after_its_check_is_not_written(store, tmp_path):
    path = write(tmp_path, "shops.csv", HEADER + _rows(3))
    prepared = prepare_file(path, store=store)
    path.write_text(HEADER + _rows(3, name="Other") + _rows(1, 3))
    with pytest.raises(FileChanged, match="changed after it was checked"):
        importer.write_rows(store, prepared)
    assert store.get_businesses([f"S-{i}" for i in range(4)]) == {}


def test_a_file_changed_while_it_is_written_stops_at_the_changed_row(store, tmp_path, monkeypatch):
    """Same size and modification time, other content (a copy tool that keeps both): the row
    read again is checked against the one judged, and the batches before it stay whole."""
    monkeypatch.setattr(importer, "BATCH_SIZE", 2)
    path = write(tmp_path, "shops.csv", HEADER + _rows(6))
    prepared = prepare_file(path, store=store)
    stat = path.stat()
    path.write_text(HEADER + _rows(4) + _rows(2, 4).replace("S-", "X-"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(FileChanged, match="line 6 changed"):
        importer.write_rows(store, prepared)
    assert sorted(store.get_businesses([f"S-{i}" for i in range(6)])) == ["S-0", "S-1", "S-2", "S-3"]
