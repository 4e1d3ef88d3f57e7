"""No password, API token or emailed link's token reaches the logs, on both backends: every log
record of a session that signs in (rightly and wrongly), resets a password by its emailed
link, calls the API with a token (and a wrong one), makes a token in Settings and opens the
weekly email's links is read back, and none of the secrets is in it. The access log still names
each request, its credential replaced by the part's name (`/reset/<token>`)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from flask import Flask

from graph import Salesperson
from graph.records import TokenScope
from netweave import create_app
from netweave.digest.links import Action, Link
from netweave.services import accounts
from netweave.services.digests import DigestSettings
from tests.conftest import app_config
from tests.support.api import DANA, Api, token
from tests.support.smtp import smtp_server
from tests.support.web import PASSWORD, Session, csrf_of

WRONG = "not-the-password-but-secret-too"
NEW_PASSWORD = "a brand new secret password"


@pytest.fixture
def mailed_app(store_settings, tmp_path):
    with smtp_server() as mailbox:
        app = create_app({**app_config(store_settings, tmp_path), **mailbox.config})
        try:
            yield app, mailbox
        finally:
            app.extensions["netweave.store"].close()


def test_no_password_or_token_is_ever_logged(mailed_app: tuple[Flask, object], caplog: pytest.LogCaptureFixture):
    app, mailbox = mailed_app
    caplog.set_level(logging.DEBUG)
    store = app.extensions["netweave.store"]
    store.upsert_salespeople([Salesperson(DANA, "Dana Reyes", DANA)])
    accounts.set_password(store, DANA, PASSWORD)

    session = Session(app.test_client())
    assert session.sign_in(DANA, WRONG).status_code == 400
    form = csrf_of(session.get("/reset").get_data(as_text=True))
    session.client.post("/reset", data={"csrf_token": form, "login": DANA})
    [message] = mailbox.wait_for(1)
    reset = urlsplit(re.search(r"http://\S+/reset/\S+", message.get_content()).group(0)).path
    answer = session.post_form(reset, reset, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert answer.location == "/sign-in"
    assert session.sign_in(DANA, NEW_PASSWORD).status_code == 302

    secret = token(store, TokenScope.READ, salesperson=DANA)
    assert Api(app.test_client(), secret).get("/me").status_code == 200
    forged = secret[:-4] + "AAAA"
    assert Api(app.test_client(), forged).get("/me").status_code == 401
    page = session.post_form("/settings", "/settings/tokens", {"name": "CRM", "scopes": ["read"]})
    made = re.search(r'id="new-token">([^<]+)<', page.get_data(as_text=True)).group(1)

    signer = DigestSettings.from_config(app.config).signer
    link = signer.sign(Link(Action.SNOOZE, DANA, "2026-W48", datetime(2030, 1, 1, tzinfo=UTC), "F1", "V1"))
    session.get(f"/email/act/{link}")
    unsubscribe = signer.sign_unsubscribe(DANA)
    app.test_client().get(f"/email/unsubscribe/{unsubscribe}")

    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]  # not the test's SMTP server's
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in ours)
    reset_token = reset.rsplit("/", 1)[1]
    secrets = {
        "password": PASSWORD, "wrong password": WRONG, "new password": NEW_PASSWORD, "reset token": reset_token,
        "API token": secret, "forged token": forged, "token made in Settings": made, "email link": link,
        "unsubscribe link": unsubscribe,
    }  # fmt: skip
    for what, value in secrets.items():
        assert value not in logged, f"the {what} was logged"
    assert "GET /reset/<token> 200" in logged and "GET /email/act/<token>" in logged  # still named
