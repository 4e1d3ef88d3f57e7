"""The import columns and the CRM header spellings that map to them.

Headers are compared after folding case and punctuation, so "Account ID",
"account_id" and "account-id" are one spelling.
"""

from __future__ import annotations

import difflib
import re

# canonical column -> (what it holds, other spellings seen in CRM exports)
COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "id": (
        "The CRM's stable id for the account (required, unique in the file).",
        ("external id", "account id", "customer id", "crm id", "record id", "company id", "account number"),
    ),
    "name": (
        "Business name (required).",
        ("company", "company name", "account name", "business name", "organization", "organisation"),
    ),
    "salesperson": (
        "Email (or id) of the salesperson who manages the account; --salesperson gives a default.",
        (
            "owner",
            "account owner",
            "company owner",
            "record owner",
            "owner email",
            "sales rep",
            "salesperson email",
            "rep email",
            "assigned to",
        ),
    ),
    "salesperson_name": ("Display name of that salesperson.", ("owner name", "sales rep name", "rep name")),
    "description": (
        "What the business does and offers.",
        ("about", "what they do", "services", "offers", "company description", "account description", "notes"),
    ),
    "customers": (
        "Who the business serves.",
        ("who they serve", "target customers", "clients", "audience", "customer base", "serves"),
    ),
    "needs": (
        "What partners or referrals the business wants.",
        ("looking for", "wants", "referral needs", "referrals wanted", "partner needs"),
    ),
    "categories": (
        "Kinds of business, separated by ';' (e.g. 'Florist; Event Decor').",
        ("category", "industry", "business type", "kind of business", "vertical", "sector"),
    ),
    "website": (
        "Web address; 'example.com' becomes 'https://example.com'.",
        ("url", "web", "website url", "web site"),
    ),
    "domain": (
        "Web domain (e.g. 'example.com'); the website when the row gives none.",
        ("company domain name", "domain name", "web domain"),
    ),
    "email": ("Contact email address.", ("e mail", "email address", "contact email", "primary email")),
    "contact_name": (
        "Contact person.",
        ("contact", "contact person", "primary contact", "main contact", "contact full name"),
    ),
    "employees": (
        "Number of employees (whole number).",
        ("number of employees", "employee count", "headcount", "staff", "no of employees", "size"),
    ),
    "city": ("City (required when any other location column is given).", ("town", "billing city", "locality")),
    "region": (
        "State, province or region ('Colorado' or 'CO').",
        ("state", "province", "billing state", "state province", "state region", "billing state province", "county"),
    ),
    "postal_code": (
        "Postal or ZIP code; a US ZIP code locates the business when no coordinates are given.",
        (
            "zip",
            "zip code",
            "zipcode",
            "postal code",
            "postcode",
            "billing zip postal code",
            "billing postal code",
            "billing zip",
            "zip postal code",
        ),
    ),
    "country": (
        "Country ('United States', 'USA' or 'US'; US when blank and the state or ZIP code is a US one).",
        ("billing country", "country region", "country code", "nation"),
    ),
    "metro": (
        "Metro area the city belongs to (e.g. 'Twin Cities'); cities in one metro are one market.",
        ("metro area", "metropolitan area", "market", "msa"),
    ),
    "latitude": ("Latitude in degrees (-90 to 90).", ("lat",)),
    "longitude": ("Longitude in degrees (-180 to 180).", ("lon", "lng", "long")),
    "opted_out": (
        "yes/no: the customer asked not to be introduced to anyone.",
        ("do not introduce", "opt out", "no intros", "opted out"),
    ),
    "status": (
        "active or archived (also yes/no for an 'Active' column); without it, archived accounts stay archived.",
        ("active", "account status", "is active", "customer status", "record status"),
    ),
    "partners": ("Ids of customers it already partners with, separated by ';'.", ("partner ids", "partnered with")),
    "knows": ("Ids of customers it already knows, separated by ';'.", ("known ids", "relationships", "knows ids")),
}

REQUIRED = ("id", "name")

# Columns CRMs add to every export that Netweave has no use for: ignored with a note, never
# refused (HubSpot companies and Salesforce accounts exports, as they come).
CRM_EXTRAS = frozenset(
    {
        "create date", "created date", "last activity date", "last modified date", "last contacted",
        "phone", "phone number", "fax", "street address", "street address 2", "billing street", "address",
        "shipping street", "shipping city", "shipping state province", "shipping zip postal code",
        "shipping country", "type", "account type", "lifecycle stage", "lead status", "annual revenue",
        "time zone", "parent account", "account source", "original source", "record source", "rating",
        "ownership", "ticker symbol", "sic code", "naics code", "account site", "linkedin company page",
        "facebook company page", "twitter handle", "year founded", "number of associated contacts",
        "number of associated deals", "last modified by", "created by",
    }
)  # fmt: skip


def fold(header: str) -> str:
    """'Account-ID ' -> 'account id'."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", header.lower()).split())


_LOOKUP: dict[str, str] = {}
for _canonical, (_help, _aliases) in COLUMNS.items():
    for _spelling in (_canonical, *_aliases):
        _LOOKUP[fold(_spelling)] = _canonical


def canonical_column(header: str) -> str | None:
    """The import column a header names, or None if it names none."""
    return _LOOKUP.get(fold(header))


def is_crm_extra(header: str) -> bool:
    """A column CRMs add that Netweave ignores (with a note) rather than refuses."""
    return fold(header) in CRM_EXTRAS


def suggest_column(header: str) -> str | None:
    """The closest known spelling, to help with typos like 'emial'."""
    match = difflib.get_close_matches(fold(header), list(_LOOKUP), n=1, cutoff=0.75)
    return _LOOKUP[match[0]] if match else None
