"""Signing in to the web app: passwords (argon2id, via argon2-cffi), sign-in, and password
resets by an emailed link.

A session names the salesperson and a fingerprint of their password hash (`session_key`),
so changing the password signs every other session out. A reset link is signed with the
app's secret key, expires, and carries the same fingerprint: it works once, because using
it changes the hash.
"""

from __future__ import annotations

import functools
import hashlib
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from graph import GraphStore, Role, Salesperson, UnknownSalespersonError
from graph.records import Credentials, DigestPreferences
from netweave.services.access import Conflict, Invalid, NotAllowed, NotFound, Viewer

MIN_PASSWORD = 10
MAX_PASSWORD = 256  # argon2 takes any length; a bound keeps one request's work bounded
MIN_DIGEST, MAX_DIGEST = 1, 20  # introductions a weekly email may suggest

_HASHER = PasswordHasher()
# Checked when the login is unknown, so that a wrong login takes as long as a wrong password.
_NOBODY = _HASHER.hash("not anyone's password")
_RESET_SALT = "netweave.password-reset"


def check_password(password: str, login: str = "") -> None:
    """Raises Invalid naming the field `password` when it is too short, too long or the login."""
    if len(password) < MIN_PASSWORD:
        raise Invalid((("password", f"use at least {MIN_PASSWORD} characters"),))
    if len(password) > MAX_PASSWORD:
        raise Invalid((("password", f"use at most {MAX_PASSWORD} characters"),))
    if login and password.strip().lower() == login.strip().lower():
        raise Invalid((("password", "must not be your email or id"),))


def add_salesperson(store: GraphStore, email: str, name: str, role: Role = Role.SALESPERSON) -> Salesperson:
    """A new salesperson who can sign in once a password is set; their id is the email,
    lower-cased, as the importers make it. Conflict if one with that id exists already."""
    key = email.strip().lower()
    problems = []
    if "@" not in key or len(key) > 320 or any(c.isspace() for c in key):
        problems.append(("email", f"{email!r} is not an email address"))
    if not name.strip():
        problems.append(("name", "give the salesperson's name"))
    if problems:
        raise Invalid(tuple(problems))
    if store.get_salesperson(key) is not None:
        raise Conflict(f"salesperson {key} exists already")
    person = Salesperson(key, name.strip(), key, role)
    store.write(lambda w: w.upsert_salespeople([person]))
    return person


def set_password(store: GraphStore, salesperson_id: str, password: str, now: datetime | None = None) -> Salesperson:
    """Set (or replace) a salesperson's password, which signs their other sessions out."""
    credentials = store.credentials_for(salesperson_id)
    if credentials is None or credentials.salesperson.id != salesperson_id:
        raise NotFound(f"no salesperson {salesperson_id}")
    check_password(password, salesperson_id)
    try:
        store.write(lambda w: w.set_password_hash(salesperson_id, _HASHER.hash(password), now or datetime.now(UTC)))
    except UnknownSalespersonError as error:  # removed meanwhile
        raise NotFound(f"no salesperson {salesperson_id}") from error
    return credentials.salesperson


def sign_in(store: GraphStore, login: str, password: str) -> Salesperson | None:
    """The salesperson whose login (id or email) and password these are, else None.

    A hash made with weaker parameters than today's is replaced on the way in."""
    credentials = store.credentials_for(login) if login.strip() and len(password) <= MAX_PASSWORD else None
    stored = credentials.password_hash if credentials else None
    try:
        _HASHER.verify(stored or _NOBODY, password)
    except (VerificationError, InvalidHashError):
        return None
    if credentials is None or stored is None:
        return None
    if _HASHER.check_needs_rehash(stored):
        person = credentials.salesperson.id
        store.write(lambda w: w.set_password_hash(person, _HASHER.hash(password), datetime.now(UTC)))
    return credentials.salesperson


def session_key(credentials: Credentials) -> str:
    """What a signed-in session remembers: the id and a fingerprint of the current hash."""
    return f"{_fingerprint(credentials)}:{credentials.salesperson.id}"


def signed_in(store: GraphStore, key: str) -> Salesperson | None:
    """The salesperson a session key names, if their password has not changed since."""
    fingerprint, _, salesperson_id = key.partition(":")
    credentials = store.credentials_for(salesperson_id) if salesperson_id else None
    if credentials is None or credentials.salesperson.id != salesperson_id or credentials.password_hash is None:
        return None
    return credentials.salesperson if _fingerprint(credentials) == fingerprint else None


def _fingerprint(credentials: Credentials) -> str:
    return hashlib.sha256((credentials.password_hash or "").encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ResetRequest:
    """Whom to email a reset link, and the link's signed token."""

    salesperson: Salesperson
    email: str
    token: str


def request_reset(store: GraphStore, secret_key: str, login: str) -> ResetRequest | None:
    """A reset token for the salesperson with this login and an email address, else None
    (the caller answers the same either way, so nobody learns who has an account)."""
    credentials = store.credentials_for(login) if login.strip() else None
    if credentials is None or not credentials.salesperson.email:
        return None
    serializer = URLSafeTimedSerializer(secret_key, salt=_RESET_SALT)
    token = serializer.dumps({"id": credentials.salesperson.id, "f": _fingerprint(credentials)})
    return ResetRequest(credentials.salesperson, credentials.salesperson.email, token)


def reset_password(
    store: GraphStore, secret_key: str, token: str, password: str, max_age_seconds: int, now: datetime | None = None
) -> Salesperson:
    """Set the password a reset link was sent for. Invalid (field `token`) when the link is
    expired, tampered with or used already; Invalid (field `password`) for a weak password."""
    serializer = URLSafeTimedSerializer(secret_key, salt=_RESET_SALT)
    try:
        claims = serializer.loads(token, max_age=max_age_seconds)
    except SignatureExpired as error:
        raise Invalid((("token", "this reset link has expired; ask for a new one"),)) from error
    except BadSignature as error:
        raise Invalid((("token", "this reset link is not valid; ask for a new one"),)) from error
    salesperson_id = claims.get("id", "") if isinstance(claims, dict) else ""
    credentials = store.credentials_for(salesperson_id) if salesperson_id else None
    if (
        credentials is None
        or credentials.salesperson.id != salesperson_id
        or claims.get("f") != _fingerprint(credentials)
    ):
        raise Invalid((("token", "this reset link has been used already; ask for a new one"),))
    return set_password(store, salesperson_id, password, now)


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA time zone names this machine knows (zoneinfo, with the tzdata package)."""
    return frozenset(zoneinfo.available_timezones())


def digest_preferences(store: GraphStore, viewer: Viewer) -> DigestPreferences:
    """The signed-in salesperson's weekly-email preferences (defaults until set)."""
    return store.digest_preferences(_own(viewer))


def set_digest_preferences(
    store: GraphStore,
    viewer: Viewer,
    *,
    weekly: bool,
    weekday: int,
    size: int,
    hour: int = 8,
    timezone: str = "UTC",
    note_when_empty: bool = False,
) -> DigestPreferences:
    """Keep how the salesperson wants the weekly email; Invalid names a field out of range."""
    problems = []
    if not 0 <= weekday <= 6:
        problems.append(("weekday", "choose a day from Monday (0) to Sunday (6)"))
    if not MIN_DIGEST <= size <= MAX_DIGEST:
        problems.append(("size", f"choose {MIN_DIGEST} to {MAX_DIGEST} introductions"))
    if not 0 <= hour <= 23:
        problems.append(("hour", "choose an hour from 0 to 23"))
    if timezone not in time_zones():
        problems.append(("timezone", f"{timezone!r} is not a time zone name such as America/Chicago"))
    if problems:
        raise Invalid(tuple(problems))
    preferences = DigestPreferences(_own(viewer), weekly, weekday, size, hour, timezone, note_when_empty)
    store.write(lambda w: w.set_digest_preferences(preferences))
    return preferences


def _own(viewer: Viewer) -> str:
    if viewer.salesperson_id is None:
        raise NotAllowed("preferences belong to a salesperson")
    return viewer.salesperson_id
