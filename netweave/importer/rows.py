"""Validate one raw row into a BusinessRecord, or say which field is wrong and why."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from graph import BusinessRecord, Place, Salesperson

_TRUE = {"yes", "y", "true", "t", "1", "x"}
_FALSE = {"no", "n", "false", "f", "0", ""}
_ACTIVE = {"active", "current", "customer", *_TRUE} - {""}
_ARCHIVED = {"archived", "inactive", "closed", "churned", "former", "lost", *_FALSE} - {""}
_LIST_SEPARATORS = re.compile(r"[;|\n]")


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


# Control characters (NUL among them) have no place in a CRM's text and break what reads it
# later (terminals, CSV reports, email headers); tabs and line breaks are fine in notes.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MAX_TEXT = 20_000  # characters in one field (a long account note fits; a pasted document does not)


def _checked(text: str) -> str:
    if found := _CONTROL.search(text):
        raise ValueError(f"contains a control character (U+{ord(found.group()):04X}) at character {found.start() + 1}")
    if len(text) > MAX_TEXT:
        raise ValueError(f"is {len(text):,} characters long; at most {MAX_TEXT:,}")
    return text


def _to_text(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _checked(value) if isinstance(value, str) else value


def _to_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        items = _LIST_SEPARATORS.split(_checked(value))
    elif isinstance(value, list):
        items = [_checked(str(item)) for item in value if item is not None]
    else:
        raise ValueError("expected a list or text separated by ';'")
    seen: dict[str, None] = {}
    for item in items:
        if item := " ".join(item.split()):
            seen.setdefault(item)
    return list(seen)


Text = Annotated[str | None, BeforeValidator(_to_text)]
TextList = Annotated[list[str], BeforeValidator(_to_list)]


class BusinessRow(BaseModel):
    """One import row after header mapping; field names are the import columns."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Annotated[str, BeforeValidator(_to_text), Field(max_length=200)]
    name: Annotated[str, BeforeValidator(_to_text), Field(max_length=300)]
    salesperson: Text = None
    salesperson_name: Text = None
    description: Text = None
    customers: Text = None
    needs: Text = None
    categories: TextList = Field(default_factory=list)
    website: Text = None
    domain: Text = None
    email: Text = None
    contact_name: Text = None
    employees: Annotated[int | None, Field(ge=0, le=10_000_000)] = None
    city: Text = None
    region: Text = None
    postal_code: Text = None
    country: Text = None
    metro: Text = None
    # The bounds apply to a number only (a constraint on `float | None` would meet None and raise).
    latitude: Annotated[Annotated[float, Field(ge=-90, le=90)] | None, BeforeValidator(_blank_to_none)] = None
    longitude: Annotated[Annotated[float, Field(ge=-180, le=180)] | None, BeforeValidator(_blank_to_none)] = None
    opted_out: bool = False
    status: Literal["active", "archived"] | None = None  # None: the file does not say
    partners: TextList = Field(default_factory=list)  # a factory, not a default deep-copied per row
    knows: TextList = Field(default_factory=list)

    @field_validator("employees", mode="before")
    @classmethod
    def _employees(cls, value: Any) -> Any:
        value = _blank_to_none(value)
        if isinstance(value, str):
            digits = value.replace(",", "").replace("_", "").replace(" ", "")
            if not digits.isdigit():
                raise ValueError(f"{value!r} is not a whole number of employees")
            return int(digits)
        if isinstance(value, int) and value < 0:
            raise ValueError("must not be negative")
        return value

    @field_validator("opted_out", mode="before")
    @classmethod
    def _opted_out(cls, value: Any) -> Any:
        if value is None:
            return False
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise ValueError(f"{value!r} is not yes or no")
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        return parse_status(value)

    @field_validator("email", "salesperson")
    @classmethod
    def _email(cls, value: str | None, info: Any) -> str | None:
        if value is None:
            return None
        if info.field_name == "salesperson" and "@" not in value:
            return value  # an id rather than an email
        return _normalised_email(value)

    @field_validator("website", "domain")
    @classmethod
    def _website(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = value if re.match(r"^https?://", value, re.I) else f"https://{value}"
        host = re.sub(r"^https?://", "", url, flags=re.I).split("/")[0]
        if " " in url or not re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?", host):
            raise ValueError(f"{value!r} is not a web address")
        return url

    @model_validator(mode="after")
    def _place(self) -> BusinessRow:
        located = any(v is not None for v in (self.region, self.metro, self.country, self.latitude, self.longitude))
        if located and self.city is None:
            raise ValueError("city: required when region, country, metro or coordinates are given")
        # A postal code alone is no place to show; it locates a city given beside it.
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude: give both or neither")
        return self

    def to_record(self, default_salesperson: str | None) -> BusinessRecord:
        place = None
        if self.city:
            place = Place(
                city=self.city,
                region=self.region or "",
                country=self.country or "",
                metro=self.metro or "",
                lat=self.latitude,
                lon=self.longitude,
                postal_code=self.postal_code or "",
            )
        return BusinessRecord(
            id=self.id,
            name=self.name,
            salesperson_id=salesperson_id(self.salesperson or default_salesperson or ""),
            description=self.description or "",
            customers=self.customers or "",
            needs=self.needs or "",
            website=self.website or self.domain,
            email=self.email,
            contact_name=self.contact_name,
            employees=self.employees,
            categories=tuple(self.categories),
            place=place,
            opted_out=self.opted_out,
        )

    def to_salesperson(self, default_salesperson: str | None) -> Salesperson:
        reference = self.salesperson or default_salesperson or ""
        email = salesperson_id(reference) if "@" in reference else None
        name = self.salesperson_name or (reference.split("@")[0].replace(".", " ").title() if email else reference)
        return Salesperson(salesperson_id(reference), name, email)


def row_of(record: BusinessRecord, salesperson_name: str | None = None) -> dict[str, Any]:
    """A stored record back as the import columns it would come from (for an edit of some fields)."""
    place = record.place
    fields: dict[str, Any] = {
        "id": record.id, "name": record.name, "salesperson": record.salesperson_id,
        "salesperson_name": salesperson_name, "description": record.description, "customers": record.customers,
        "needs": record.needs, "categories": list(record.categories), "website": record.website,
        "email": record.email, "contact_name": record.contact_name, "employees": record.employees,
        "opted_out": record.opted_out,
    }  # fmt: skip
    if place is not None:
        fields |= {
            "city": place.city, "region": place.region, "country": place.country, "metro": place.metro,
            "postal_code": place.postal_code, "latitude": place.lat, "longitude": place.lon,
        }  # fmt: skip
    return fields


def parse_status(value: Any) -> str | None:
    """'active', 'archived', or None for a blank cell."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return "active" if value else "archived"
    word = str(value).strip().lower()
    if word in _ACTIVE:
        return "active"
    if word in _ARCHIVED:
        return "archived"
    raise ValueError(f"{value!r} is not a status (use active or archived)")


def parse_ids(value: Any) -> list[str]:
    """A list column (partners, knows) as BusinessRow reads it."""
    return _to_list(value)


# Part of every source digest: bump it whenever validation or normalisation changes what a row
# becomes, so rows imported before are validated again instead of being taken as unchanged.
IMPORT_VERSION = "2"  # 2: places normalised and located, domains, postal codes


def source_digest(fields: Mapping[str, Any], default_salesperson: str | None) -> str:
    """A digest of a raw row as the file gave it (and the options that shape it): equal digests
    mean the row would validate into the same record."""
    payload = json.dumps([IMPORT_VERSION, default_salesperson, sorted(fields.items())], ensure_ascii=False, default=str)
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


@functools.lru_cache(maxsize=4096)
def _normalised_email(value: str) -> str:
    # Cached: an export repeats a handful of salesperson addresses on every row.
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(f"{value!r} is not a valid email address ({str(error).rstrip('.')})") from None


def salesperson_id(reference: str) -> str:
    """Salespeople are keyed by lower-cased email (or the id given instead)."""
    return reference.strip().lower()


def error_items(error: ValidationError) -> list[tuple[str, str]]:
    """(field, message) for each problem, in the row's own terms ('' for the row as a whole)."""
    items = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing" or (item["type"] == "string_type" and item["input"] is None):
            message = "missing (required)"
        elif item["type"] in ("int_parsing", "float_parsing", "bool_parsing"):
            message = f"{item['input']!r} is not a number" if item["type"] != "bool_parsing" else message
        elif item["type"] == "extra_forbidden":
            message = "not a field of a business (see the import columns)"
        elif item["type"] in ("too_long", "string_too_long") and isinstance(item["input"], str):
            limit = item.get("ctx", {}).get("max_length")
            message = f"is {len(item['input']):,} characters long; at most {limit:,}"
        # A whole-row check names its fields in its message ("city: required when ...").
        if not field and (named := re.match(r"^([a-z_]+(?: and [a-z_]+)?): (.*)$", message)):
            field, message = named.group(1), named.group(2)
        items.append((field, message))
    return items


def describe_errors(error: ValidationError) -> str:
    """'email: 'bob@' is not a valid email address; employees: ...' in the row's own terms."""
    return "; ".join(f"{field}: {message}" if field else message for field, message in error_items(error))
