"""Sign-in accounts on both backends, through the service layer: passwords kept as argon2
hashes, sign-in by id or email, sessions that a password change ends, reset links that work
once, and salespeople added from the CLI."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from graph import Role, Salesperson
from netweave.services import accounts
from netweave.services.access import Conflict, Invalid, NotFound
from tests.support.api import DANA, KEN

SECRET = "a test secret key"
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def people(store):
    store.upsert_salespeople([Salesperson(DANA, "Dana Reyes", "Dana@Example.com"), Salesperson(KEN, "Ken Olson")])
    return store


def test_a_password_is_kept_only_as_an_argon2_hash_and_signs_in_by_id_or_email(people):
    accounts.set_password(people, DANA, "lilies and peonies", now=T0)
    stored = people.credentials_for(DANA)
    assert stored.password_hash.startswith("$argon2id$") and "lilies" not in stored.password_hash
    assert stored.changed_at == T0
    for login in (DANA, " DANA@example.com ", "dana@EXAMPLE.com"):
        assert accounts.sign_in(people, login, "lilies and peonies") == Salesperson(
            DANA, "Dana Reyes", "Dana@Example.com"
        )
    assert accounts.sign_in(people, DANA, "lilies and peonies!") is None
    assert accounts.sign_in(people, "nobody@example.com", "lilies and peonies") is None
    assert accounts.sign_in(people, KEN, "") is None  # Ken has no password yet
    assert accounts.sign_in(people, "", "lilies and peonies") is None


def test_weak_passwords_are_refused_naming_the_field_and_nothing_is_written(people):
    for weak in ("short", DANA, "x" * (accounts.MAX_PASSWORD + 1)):
        with pytest.raises(Invalid) as refused:
            accounts.set_password(people, DANA, weak)
        assert refused.value.problems[0][0] == "password"
    assert people.credentials_for(DANA).password_hash is None
    with pytest.raises(NotFound):
        accounts.set_password(people, "nobody@example.com", "a long enough password")


def test_a_session_ends_when_the_password_changes(people):
    accounts.set_password(people, DANA, "lilies and peonies")
    key = accounts.session_key(people.credentials_for(DANA))
    assert accounts.signed_in(people, key).id == DANA
    accounts.set_password(people, DANA, "tulips and roses!")
    assert accounts.signed_in(people, key) is None
    assert accounts.signed_in(people, accounts.session_key(people.credentials_for(DANA))).id == DANA
    for forged in ("", "0:" + DANA, key.replace(DANA, KEN), "abc"):
        assert accounts.signed_in(people, forged) is None


def test_a_reset_link_sets_a_new_password_once(people):
    accounts.set_password(people, DANA, "lilies and peonies")
    wanted = accounts.request_reset(people, SECRET, "dana@example.com")
    assert wanted.salesperson.id == DANA and wanted.email == "Dana@Example.com"
    accounts.reset_password(people, SECRET, wanted.token, "tulips and roses!", max_age_seconds=600)
    assert accounts.sign_in(people, DANA, "tulips and roses!") is not None
    with pytest.raises(Invalid, match="used already"):
        accounts.reset_password(people, SECRET, wanted.token, "another new one!", max_age_seconds=600)
    assert accounts.sign_in(people, DANA, "tulips and roses!") is not None


def test_a_reset_link_that_is_forged_expired_or_for_nobody_is_refused(people):
    accounts.set_password(people, DANA, "lilies and peonies")
    assert accounts.request_reset(people, SECRET, KEN) is None  # no email address to send to
    assert accounts.request_reset(people, SECRET, "nobody@example.com") is None
    token = accounts.request_reset(people, SECRET, DANA).token
    with pytest.raises(Invalid, match="not valid"):
        accounts.reset_password(people, "another key", token, "tulips and roses!", max_age_seconds=600)
    with pytest.raises(Invalid, match="not valid"):
        accounts.reset_password(people, SECRET, token[:-3] + "abc", "tulips and roses!", max_age_seconds=600)
    time.sleep(1.1)
    with pytest.raises(Invalid, match="expired"):
        accounts.reset_password(people, SECRET, token, "tulips and roses!", max_age_seconds=0)
    with pytest.raises(Invalid) as weak:
        accounts.reset_password(people, SECRET, token, "short", max_age_seconds=600)
    assert weak.value.problems == (("password", f"use at least {accounts.MIN_PASSWORD} characters"),)
    assert accounts.sign_in(people, DANA, "lilies and peonies") is not None


def test_a_salesperson_added_for_sign_in(people):
    added = accounts.add_salesperson(people, " Maya@Example.com ", "Maya Lind", Role.MANAGER)
    assert added == Salesperson("maya@example.com", "Maya Lind", "maya@example.com", Role.MANAGER)
    assert people.get_salesperson("maya@example.com") == added
    with pytest.raises(Conflict):
        accounts.add_salesperson(people, "maya@example.com", "Maya again")
    with pytest.raises(Invalid) as bad:
        accounts.add_salesperson(people, "not an email", " ")
    assert [field for field, _ in bad.value.problems] == ["email", "name"]
    assert people.credentials_for("not an email") is None
