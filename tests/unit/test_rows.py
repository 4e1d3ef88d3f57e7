"""Row validation: what a CRM row may hold and how a bad value is explained."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from graph import Place, Salesperson
from netweave.importer.rows import BusinessRow, describe_errors, error_items


def row(**fields) -> BusinessRow:
    return BusinessRow.model_validate({"id": "A-1", "name": "Alpha", **fields})


def error_of(**fields) -> str:
    with pytest.raises(ValidationError) as caught:
        row(**fields)
    return describe_errors(caught.value)


def test_text_is_trimmed_and_blank_means_absent():
    record = row(name="  Alpha Florist ", description="  ", email="", salesperson="dana@example.com").to_record(None)
    assert record.name == "Alpha Florist"
    assert record.description == ""
    assert record.email is None


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("petalandstem.com", "https://petalandstem.com"),
        ("www.petal.co.uk/shop", "https://www.petal.co.uk/shop"),
        ("HTTP://Petal.com", "HTTP://Petal.com"),
    ],
)
def test_websites_get_a_scheme(given, stored):
    assert row(website=given).website == stored


@pytest.mark.parametrize("given", ["not a url", "petal", "http://", "petal .com"])
def test_malformed_websites_are_named(given):
    assert error_of(website=given) == f"website: {given!r} is not a web address"


def test_emails_are_normalised_and_bad_ones_explained():
    assert row(email="Hello@Petal.COM").email == "Hello@petal.com"
    assert error_of(email="bob@").startswith("email: 'bob@' is not a valid email address (")


@pytest.mark.parametrize(("given", "stored"), [("1,200", 1200), ("12", 12), (7, 7), ("", None)])
def test_employee_counts(given, stored):
    assert row(employees=given).employees == stored


def test_employee_counts_must_be_whole_and_plausible():
    assert error_of(employees="11-50") == "employees: '11-50' is not a whole number of employees"
    assert error_of(employees=-3).startswith("employees:")
    assert error_of(employees="99999999999").startswith("employees: Input should be less than or equal to")


@pytest.mark.parametrize(("given", "stored"), [("Yes", True), ("x", True), ("no", False), ("", False), (True, True)])
def test_opt_out_flags(given, stored):
    assert row(opted_out=given).opted_out is stored


def test_an_unclear_opt_out_is_an_error():
    assert error_of(opted_out="maybe") == "opted_out: 'maybe' is not yes or no"


def test_lists_split_on_semicolons_and_pipes_and_drop_repeats():
    assert row(categories="Florist; Event Decor|florist ;Florist").categories == ["Florist", "Event Decor", "florist"]
    assert row(partners=["A-2", None, " A-3 "]).partners == ["A-2", "A-3"]


def test_location_needs_a_city_and_both_coordinates():
    assert error_of(region="MN") == "city: required when region, country, metro or coordinates are given"
    assert error_of(city="Austin", latitude="30.2") == "latitude and longitude: give both or neither"
    assert error_of(city="Austin", latitude="north", longitude="1") == "latitude: 'north' is not a number"
    assert error_of(city="Austin", latitude="91", longitude="1").startswith("latitude: Input should be less")
    place = row(city="Austin", region="TX", latitude="30.27", longitude="-97.74").to_record("x").place
    assert place == Place("Austin", "TX", "", "", 30.27, -97.74)
    assert place.market == "Austin, TX"


def test_several_problems_are_all_named():
    assert error_of(id="", name=None, email="nope") == (
        "id: missing (required); name: missing (required); "
        "email: 'nope' is not a valid email address (An email address must have an @-sign)"
    )


def test_salesperson_from_email_or_id():
    assert row(salesperson="Dana.Whitfield@Example.com").to_salesperson(None) == Salesperson(
        "dana.whitfield@example.com", "Dana Whitfield", "dana.whitfield@example.com"
    )
    assert row(salesperson_name="Ken O").to_salesperson("ken-7") == Salesperson("ken-7", "Ken O", None)
    assert row().to_record("Ken-7").salesperson_id == "ken-7"


def test_null_coordinates_are_absent_and_out_of_range_ones_are_explained():
    assert row(city="Denver", latitude=None, longitude=None).latitude is None  # JSON null, not a crash
    assert error_of(city="Denver", latitude=91, longitude=0) == "latitude: Input should be less than or equal to 90"


def test_each_problem_names_its_field_also_from_a_whole_row_check():
    with pytest.raises(ValidationError) as caught:
        row(region="MN")
    assert error_items(caught.value) == [("city", "required when region, country, metro or coordinates are given")]


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"name": "Al\x00pha"}, "name: contains a control character (U+0000) at character 3"),
        ({"description": "bell\x07"}, "description: contains a control character (U+0007) at character 5"),
        ({"categories": "Florist;Ev\x1bents"}, "categories: contains a control character (U+001B) at character 11"),
        ({"knows": ["B-1", "B\x7f2"]}, "knows: contains a control character (U+007F) at character 2"),
        ({"description": "x" * 20_001}, "description: is 20,001 characters long; at most 20,000"),
        ({"name": "x" * 301}, "name: is 301 characters long; at most 300"),
    ],
)
def test_control_characters_and_over_long_fields_are_refused_by_name(fields, said):
    assert said in error_of(**fields)


def test_tabs_and_line_breaks_in_notes_are_kept():
    assert row(description="Line one\n\tLine two\r\nthree").to_record(None).description.count("\n") == 2
