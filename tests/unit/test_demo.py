"""The demo book of business: deterministic, varied, and valid import data."""

from __future__ import annotations

from collections import Counter

from netweave import demo
from netweave.importer.reader import RawRow
from netweave.importer.rows import BusinessRow


def test_same_seed_same_data_other_seed_other_data():
    assert demo.generate(7) == demo.generate(7)
    assert demo.generate(7).rows != demo.generate(8).rows


def test_size_and_spread():
    data = demo.generate()
    rows = data.rows
    assert len(rows) >= 300
    kinds = Counter(r["categories"] for r in rows if r["categories"] in {k.name for k in demo.KINDS})
    assert len(kinds) >= 40
    assert {r["city"] for r in rows} == {"Minneapolis", "Saint Paul", "Austin"}
    metros = {r["city"]: r["metro"] for r in rows}
    assert metros["Minneapolis"] == metros["Saint Paul"] != metros["Austin"]
    assert len({r["salesperson"] for r in rows}) == 5
    assert len({r["name"] for r in rows}) == len(rows), "names are unique"
    assert len({r["id"] for r in rows}) == len(rows)


def test_it_holds_the_cases_matching_must_handle():
    rows = demo.generate().rows
    competitors = Counter((r["categories"], r["city"]) for r in rows if r["categories"])
    assert max(competitors.values()) >= 3, "several businesses of one kind in one city"
    assert sum(1 for r in rows if r["partners"]) >= 10
    assert sum(1 for r in rows if r["opted_out"] == "yes") >= 1
    assert sum(1 for r in rows if r["categories"] in demo.catalog.VAGUE_CATEGORIES) >= 10
    assert sum(1 for r in rows if not r["categories"]) >= 10
    assert len(demo.generate().opted_out_pairs) == 3


def test_descriptions_vary_in_wording():
    rows = demo.generate().rows
    florists = [r["description"] for r in rows if r["categories"] == "Florist"]
    assert len(set(florists)) == len(florists)
    descriptions = [r["description"] for r in rows]
    assert sum(d[0].islower() for d in descriptions) >= 30, "terse lower-case CRM notes"
    assert sum(d[0].isupper() for d in descriptions) >= 150, "full sentences"
    assert sum(d.startswith(r["name"] + ":") for d, r in zip(descriptions, rows, strict=True)) >= 30


def test_every_demo_row_is_valid_import_data():
    for line, row in enumerate(demo.generate().rows, start=2):
        BusinessRow.model_validate(RawRow(line, row).fields)
