"""Real CRM exports as they come (HubSpot companies, a Salesforce accounts report), on both backends.

The files in tests/fixtures/crm are fictional accounts written the way those CRMs write them;
they are imported with no hand editing and no options.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netweave.importer import UNASSIGNED, import_file
from netweave.matching.geography import haversine

CRM = Path(__file__).parent.parent / "fixtures" / "crm"


def km(a, b) -> float:
    return float(haversine(np.array(a.lat), np.array(a.lon), np.array(b.lat), np.array(b.lon)))


def test_a_hubspot_companies_export_imports_as_it_comes(store):
    report = import_file(store, CRM / "hubspot-companies.csv")
    assert (report.rows, report.created, report.rejected) == (40, 40, [])
    assert report.ignored_columns == ("Create Date", "Phone Number", "Last Activity Date", "Street Address")
    [unowned] = report.warnings
    assert (unowned.line, unowned.business_id) == (21, "9076319033")
    assert unowned.reason == "salesperson: empty; filed under 'unassigned' (pass --salesperson to choose)"

    owners = {s.salesperson.name: s.business_count for s in store.list_salespeople()}
    assert owners == {"Dana Whitfield": 6, "Jenna Alvarez": 10, "Marcus Oyelaran": 11, "Priya Raman": 7,
                      "Tom Kessler": 5, "Unassigned": 1}  # fmt: skip
    assert store.get_business("9076319033").record.salesperson_id == UNASSIGNED

    florist = store.get_business("2460561997").record  # Petal & Stem Floral Co., filed under Retail
    assert (florist.categories, florist.website) == (("Retail",), "https://petalandstem.example.com")
    assert store.get_business("33830305070").record.website == "https://meridiancollective.example.net", (
        "the domain when there is no website"
    )
    assert store.get_business("3925864767").record.employees == 1200

    places = {b.id: b.record.place for b in store.all_businesses()}
    assert all(place.located for place in places.values()), "every city, state and ZIP code was found"
    belmar = places["13037685844"]  # Lakewood, "Colorado", ZIP+4
    assert (belmar.city, belmar.region, belmar.country, belmar.postal_code) == ("Lakewood", "CO", "US", "80226-1904")
    downtown, charlotte = places["33830305070"], places["26377790348"]  # Denver 80202, Charlotte 28203
    assert km(belmar, downtown) < 20, "Lakewood and Denver are neighbours"
    assert km(downtown, charlotte) > 2000


def test_a_salesforce_accounts_report_imports_as_it_comes_and_again_unchanged(store):
    path = CRM / "salesforce-accounts.csv"
    report = import_file(store, path)
    assert (report.rows, report.created, report.rejected, report.warnings) == (40, 40, [], [])
    assert report.ignored_columns == ("Type", "Billing Street", "Phone", "Last Modified Date")
    assert {s.salesperson.name for s in store.list_salespeople()} == {
        "Aisha Coleman", "Ben Achterberg", "Kendra Holloway", "Luis Navarro", "Simone Beaulieu"
    }  # fmt: skip
    lender = store.get_business("001Hs00000H0pRtIAJ").record  # Tualatin Valley Mortgage: a CRLF inside its notes
    assert lender.place.region == "OR" and "\n" in lender.description
    escrow = store.get_business("0014W00002TexWmQAJ").record
    assert (escrow.employees, escrow.place.region, escrow.place.country) == (1200, "OR", "US")
    unknown_kind = store.get_business("001Hs00000Za8ByIAJ").record  # Meadowbrook Partners: no industry, no notes
    assert unknown_kind.categories == () and unknown_kind.description == ""
    places = [b.record.place for b in store.all_businesses()]
    assert all(place.located for place in places)
    portland = next(p for p in places if p.city == "Portland")
    beaverton = next(p for p in places if p.city == "Beaverton")
    assert km(portland, beaverton) < 20

    again = import_file(store, path)
    assert (again.unchanged, again.created, again.updated) == (40, 0, 0)
