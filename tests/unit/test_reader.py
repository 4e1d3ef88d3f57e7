"""Reading CRM files: header spellings, line numbers, formats."""

from __future__ import annotations

import pytest

from netweave.importer.columns import COLUMNS, canonical_column, suggest_column
from netweave.importer.reader import ImportFileError, read_file


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("Account ID", "id"),
        ("account_id", "id"),
        ("Company Name", "name"),
        ("E-mail", "email"),
        ("Number of Employees", "employees"),
        ("Billing State/Province", "region"),
        ("State/Province", "region"),
        ("State/Region", "region"),
        ("Country/Region", "country"),
        ("Billing Zip/Postal Code", "postal_code"),
        ("Postal Code", "postal_code"),
        ("Company Domain Name", "domain"),
        ("Company owner", "salesperson"),
        ("Type", None),  # Salesforce's account type ("Customer - Direct"), not a kind of business
        ("Lng", "longitude"),
        ("Account Owner", "salesperson"),
    ],
)
def test_common_crm_header_spellings(header, column):
    assert canonical_column(header) == column


def test_no_spelling_maps_to_two_columns():
    spellings = [s for name, (_, aliases) in COLUMNS.items() for s in (name, *aliases)]
    folded = [canonical_column(s) for s in spellings]
    assert all(folded)
    assert len({s.lower() for s in spellings}) == len(spellings)


def test_typos_get_a_suggestion():
    assert suggest_column("emial") == "email"
    assert suggest_column("shoe size") is None


def test_csv_line_numbers_count_physical_lines(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('\ufeffid,name,notes\nA-1,Alpha,"two\nlines"\n\nA-2,Beta,x\n', encoding="utf-8")
    read = read_file(path)
    assert read.rejections == []
    assert [(r.line, r.fields["id"], r.fields["description"]) for r in read.rows] == [
        (2, "A-1", "two\nlines"),
        (5, "A-2", "x"),
    ]


def test_tab_separated_files(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("id\tname\nA-1\tAlpha, Inc.\n")
    assert read_file(path).rows[0].fields == {"id": "A-1", "name": "Alpha, Inc."}


def test_columns_a_crm_always_adds_are_ignored_with_a_note_not_refused(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("Record ID,Company name,Create Date,Phone Number,Colour\n1,Alpha,2025-01-01 09:00,555-0100,red\n")
    with pytest.raises(ImportFileError, match=r"unknown column\(s\) 'Colour'"):
        read_file(path)
    path.write_text("Record ID,Company name,Create Date,Phone Number\n1,Alpha,2025-01-01 09:00,555-0100\n")
    read = read_file(path)
    assert read.ignored == ("Create Date", "Phone Number")
    assert read.rows[0].fields == {"id": "1", "name": "Alpha"}


def test_two_headers_for_one_column_are_refused(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("id,name,Company\nA-1,Alpha,Alpha Inc\n")
    with pytest.raises(ImportFileError, match="columns 'name' and 'Company' both mean 'name'"):
        read_file(path)


def test_empty_and_unrecognised_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ImportFileError, match="the file is empty"):
        read_file(empty)
    odd = tmp_path / "accounts.xlsx"
    odd.write_text("x")
    with pytest.raises(ImportFileError, match="pass --format csv or jsonl"):
        read_file(odd)
    with pytest.raises(ImportFileError, match="unknown encoding 'klingon'"):
        read_file(empty, encoding="klingon")
