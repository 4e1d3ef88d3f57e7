"""A deterministic demo book of business: realistic small-business accounts in three cities.

`generate(seed)` returns import rows (the same columns a CRM export has), so the
demo goes through the real importer; equal seeds give equal data.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from graph import GraphStore, Role
from netweave.demo.catalog import (
    CITIES,
    FIRST_NAMES,
    KINDS,
    PARTNER_KINDS,
    SALESPEOPLE,
    SURNAMES,
    VAGUE_CATEGORIES,
    City,
    Kind,
)
from netweave.importer import ImportReport, import_rows
from netweave.importer.reader import RawRow

DEFAULT_SEED = 7
DEFAULT_COUNT = 320
MIN_COUNT = len(KINDS) * len(CITIES)  # every kind in every city
COLUMNS = (
    "id", "name", "salesperson", "salesperson_name", "categories", "description", "customers", "needs",
    "website", "email", "contact_name", "employees", "city", "region", "country", "metro",
    "latitude", "longitude", "opted_out", "partners", "knows",
)  # fmt: skip

_NOTES = (
    "Owner {first} is very responsive.",
    "met {first} at the chamber mixer in {month}",
    "Pays on time. Open to referral partnerships.",
    "2nd location opening next spring.",
    "{first} prefers email over phone.",
    "Long-time customer (since {year}).",
    "asked about co-marketing w/ other customers",
    "Busy season is {season}.",
    "Family-owned since {year}.",
    "New owner as of {recent_year} - relationship still warming up.",
)
_MONTHS = ("January", "March", "April", "June", "September", "October", "November")
_SEASONS = ("May through October", "the holidays", "spring", "summer", "tax season")


@dataclass
class DemoData:
    rows: list[dict[str, str]]
    opted_out_pairs: list[tuple[str, str, str]] = field(default_factory=list)


def _fill(template: str, rng: random.Random, city: City, first: str, surname: str) -> str:
    return template.format(
        surname=surname,
        first=first,
        place=rng.choice(city.neighbourhoods),
        month=rng.choice(_MONTHS),
        year=rng.randint(1978, 2022),
        recent_year=rng.randint(2022, 2026),
        season=rng.choice(_SEASONS),
    )


def _description(rng: random.Random, kind: Kind, city: City, first: str, surname: str, name: str) -> str:
    offer = _fill(rng.choice(kind.offers), rng, city, first, surname)
    note = _fill(rng.choice(_NOTES), rng, city, first, surname)
    style = rng.randrange(4)
    if style == 0:
        return f"{offer[0].upper()}{offer[1:]}."
    if style == 1:
        return f"{offer[0].upper()}{offer[1:]}. {note}"
    if style == 2:
        return f"{offer.lower()} -- {note.lower()}"
    return f"{name}: {offer}. {note}"


def _domain(name: str) -> str:
    letters = "".join(ch for ch in name.lower().replace("&", "and") if ch.isalnum())
    return f"{letters[:28]}.com"


def generate(seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT) -> DemoData:
    """`count` businesses (at least one of every kind in every city), ties and opt-outs."""
    if count < MIN_COUNT:
        raise ValueError(f"count must be at least {MIN_COUNT} (every kind in every city)")
    rng = random.Random(seed)
    slots = [(kind, city) for city in CITIES for kind in KINDS]
    slots += [rng.choice(slots) for _ in range(count - len(slots))]
    used_names: set[str] = set()
    rows: list[dict[str, str]] = []
    by_kind_city: dict[tuple[str, str], list[str]] = {}
    for number, (kind, city) in enumerate(slots, start=10001):
        for attempt in range(50):
            first, surname = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
            name = _fill(rng.choice(kind.names), rng, city, first, surname)
            if attempt >= 40:  # fixed names ("Golden Hour Photo Co.") run out: a second branch
                name = f"{name} ({city.name})"
            if name not in used_names:
                break
        else:
            raise ValueError(f"cannot find {count} distinct names; lower the count")
        used_names.add(name)
        business_id = f"ACC-{number}"
        by_kind_city.setdefault((kind.name, city.name), []).append(business_id)
        roll = rng.random()
        category = kind.name if roll < 0.78 else (rng.choice(VAGUE_CATEGORIES) if roll < 0.9 else "")
        salesperson_email, salesperson_name = (
            rng.choice(SALESPEOPLE[:3]) if city.metro == "Twin Cities" else rng.choice(SALESPEOPLE[3:])
        )
        domain = _domain(name)
        rows.append(
            {
                "id": business_id,
                "name": name,
                "salesperson": salesperson_email,
                "salesperson_name": salesperson_name,
                "categories": category,
                "description": _description(rng, kind, city, first, surname, name),
                "customers": rng.choice(kind.customers) if rng.random() < 0.85 else "",
                "needs": rng.choice(kind.needs) if rng.random() < 0.7 else "",
                "website": rng.choice((f"https://www.{domain}", f"www.{domain}", domain)),
                "email": rng.choice((f"info@{domain}", f"{first.lower()}@{domain}", f"hello@{domain}")),
                "contact_name": f"{first} {surname}",
                "employees": str(rng.randint(*kind.employees)),
                "city": city.name,
                "region": city.region,
                "country": "US",
                "metro": city.metro,
                "latitude": f"{city.lat + rng.uniform(-0.06, 0.06):.5f}",
                "longitude": f"{city.lon + rng.uniform(-0.08, 0.08):.5f}",
                "opted_out": "",
                "partners": "",
                "knows": "",
            }
        )
    row_by_id = {row["id"]: row for row in rows}
    for a_kind, b_kind in PARTNER_KINDS:
        for city in CITIES:
            if rng.random() < 0.6:
                a = rng.choice(by_kind_city[(a_kind, city.name)])
                b = rng.choice(by_kind_city[(b_kind, city.name)])
                row_by_id[a]["partners"] = ";".join(filter(None, (row_by_id[a]["partners"], b)))
    for _ in range(15):
        a, b = rng.sample(rows, 2)
        if a["city"] == b["city"]:
            a["knows"] = ";".join(filter(None, (a["knows"], b["id"])))
    for row in rng.sample(rows, 4):
        row["opted_out"] = "yes"
    opted_out_pairs = []
    for reason in ("owners had a falling out", "already compete for the same contracts", "asked to keep apart"):
        a, b = rng.sample(rows, 2)
        opted_out_pairs.append((a["id"], b["id"], reason))
    return DemoData(rows, opted_out_pairs)


def write_csv(data: DemoData, path: Path) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(data.rows)


# Demo sign-in (demo data only; `demo load` prints it and the README gives it).
DEMO_PASSWORD = "netweave-demo"
DEMO_MANAGER = ("morgan.reyes@netweave-demo.com", "Morgan Reyes")


def enable_sign_in(store: GraphStore) -> list[str]:
    """Let the demo's salespeople, and a manager over them, sign in with DEMO_PASSWORD; a
    password already set (changed since, say) is left alone. Returns who can sign in."""
    from netweave.services import accounts

    email, name = DEMO_MANAGER
    if store.get_salesperson(email) is None:
        accounts.add_salesperson(store, email, name, Role.MANAGER)
    ready = []
    for person_id in [email, *(person for person, _ in SALESPEOPLE)]:
        credentials = store.credentials_for(person_id)
        if credentials is None:  # not in this (smaller) demo
            continue
        if credentials.password_hash is None:
            accounts.set_password(store, person_id, DEMO_PASSWORD)
        ready.append(person_id)
    return ready


def load(store: GraphStore, data: DemoData) -> ImportReport:
    """Import the demo through the real importer, then record the opted-out pairs."""
    report = import_rows(store, [RawRow(line, row) for line, row in enumerate(data.rows, start=2)])
    now = datetime.now(UTC)
    for a, b, reason in data.opted_out_pairs:
        store.add_do_not_introduce(a, b, reason, now)
    return report
