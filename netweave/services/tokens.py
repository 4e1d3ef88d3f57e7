"""API tokens: created and revoked from the CLI, kept only as a hash, each with scopes and an
owner whose reach it has (a salesperson's book, a manager's team, or an integration's every book).

A token reads `nw_<id>_<secret>`: the id names it in lists and logs, the secret is random
(256 bits), and only the SHA-256 of the whole token is stored, so a leaked database gives
no usable token. A fast hash is right here: the secret is random, not a password to guess.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TTLCache

from graph import GraphStore, UnknownSalespersonError
from graph.records import ApiToken, TokenScope
from netweave.services.access import NotAllowed, NotFound, Viewer

_TOKEN = re.compile(r"nw_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    store: GraphStore,
    viewer: Viewer,
    name: str,
    scopes: Sequence[TokenScope],
    *,
    salesperson_id: str | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """A new token for a salesperson (their reach) or, without one, an integration (every
    book). The system (the CLI) or a manager may create any; a salesperson, their own, without
    the admin scope."""
    own = salesperson_id is not None and salesperson_id.strip().lower() == viewer.salesperson_id
    if not (viewer.sees_every_book or own):
        raise NotAllowed(f"{viewer.label} may create API tokens for themselves only")
    if not viewer.sees_every_book and TokenScope.ADMIN in scopes:
        raise NotAllowed("the admin scope is for managers' tokens")
    if not name.strip():
        raise ValueError("name: required (what the token is for, e.g. 'HubSpot sync')")
    if not scopes:
        raise ValueError("scopes: give at least one of read, write, admin")
    token_id = secrets.token_hex(6)
    secret = f"nw_{token_id}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        id=token_id,
        name=name.strip(),
        scopes=tuple(dict.fromkeys(TokenScope(s) for s in scopes)),
        created_at=now or datetime.now(UTC),
        salesperson_id=salesperson_id.strip().lower() if salesperson_id else None,
        created_by=viewer.label,
    )
    try:
        store.write(lambda tx: tx.create_api_token(token, _hash(secret)))
    except UnknownSalespersonError:
        raise NotFound(f"no salesperson {salesperson_id!r}") from None
    return IssuedToken(token, secret)


def revoke_token(store: GraphStore, viewer: Viewer, token_id: str, now: datetime | None = None) -> bool:
    """Revoke a token at once (a salesperson, their own only); True if it was live."""
    if not any(t.id == token_id for t in list_tokens(store, viewer)):
        raise NotFound(f"no API token {token_id!r}")
    return store.write(lambda tx: tx.revoke_api_token(token_id, now or datetime.now(UTC)))


def list_tokens(store: GraphStore, viewer: Viewer) -> list[ApiToken]:
    """Every token for a manager or the system; a salesperson's own for them."""
    every = store.list_api_tokens()
    if viewer.sees_every_book:
        return every
    return [t for t in every if t.salesperson_id == viewer.salesperson_id]


@dataclass(frozen=True)
class Caller:
    """Who an API request acts as, and what its token allows."""

    token: ApiToken
    viewer: Viewer

    def may(self, scope: TokenScope) -> bool:
        # admin implies write, write implies read: a token is never less than its widest scope
        order = [TokenScope.READ, TokenScope.WRITE, TokenScope.ADMIN]
        return max(order.index(s) for s in self.token.scopes) >= order.index(scope)


def authenticate(store: GraphStore, secret: str) -> Caller | None:
    """The caller a presented token stands for; None if it is malformed, unknown, revoked, or
    its salesperson is gone."""
    if not _TOKEN.fullmatch(secret):
        return None
    token = store.api_token_by_hash(_hash(secret))
    if token is None or token.revoked_at is not None:
        return None
    if token.salesperson_id is None:
        return Caller(token, Viewer(None, acting_as=f"integration:{token.name}"))
    person = store.get_salesperson(token.salesperson_id)
    if person is None:
        return None
    return Caller(token, Viewer(person.id, person.role))


class RecentCallers:
    """Callers whose tokens were found valid in the last `seconds` (one web process's memory,
    by the token's hash): most requests then skip the store's lookups. A token revoked, or a
    salesperson removed, meanwhile is refused within `seconds`; 0 looks up every request.
    Only valid tokens are kept, so a new token works at once."""

    def __init__(self, seconds: float, most: int = 4096, timer: Callable[[], float] = time.monotonic):
        self._callers: TTLCache[str, Caller] | None = TTLCache(most, seconds, timer) if seconds > 0 else None
        self._lock = threading.Lock()  # TTLCache is not thread-safe

    def authenticate(self, store: GraphStore, secret: str) -> Caller | None:
        if self._callers is None or not _TOKEN.fullmatch(secret):
            return authenticate(store, secret)
        key = _hash(secret)
        with self._lock:
            caller = self._callers.get(key)
        if caller is None and (caller := authenticate(store, secret)) is not None:
            with self._lock:
                self._callers[key] = caller
        return caller
