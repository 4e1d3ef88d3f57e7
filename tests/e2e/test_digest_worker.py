"""The weekly email through the running service (web and worker, as `make run` starts them,
demo loaded) on both backends: the worker's periodic task delivers one digest to each demo
salesperson with a book over real SMTP (aiosmtpd on loopback), its next run delivers nothing
more, the HTML email reads well in headless Chromium at a phone's width (screenshot beside the
web app's), a link from it introduces the pair through the web app, and a manager previews
every demo salesperson's email."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from graph import StoreSettings, open_store
from netweave import demo
from netweave.services import accounts
from netweave.services.access import Viewer
from tests.support import service as support
from tests.support.browser import chromium, screenshot, serious_violations
from tests.support.smtp import smtp_server

pytestmark = pytest.mark.e2e

DANA = "dana.whitfield@netweave-demo.com"


def _due_now(store_settings: StoreSettings) -> list[str]:
    """Make every demo salesperson's email due from this hour (whatever day the suite runs);
    returns those with a book."""
    store = open_store(store_settings)
    try:
        today = datetime.now(UTC)
        with_book = []
        for summary in store.list_salespeople():
            person = summary.salesperson
            accounts.set_digest_preferences(store, Viewer(person.id, person.role), weekly=True,
                                            weekday=today.weekday(), size=5, hour=0)  # fmt: skip
            if summary.business_count:
                with_book.append(person.email)
        return sorted(with_book)
    finally:
        store.close()


def test_the_worker_sends_each_demo_salesperson_one_digest_that_works_from_a_phone(
    store_settings: StoreSettings, tmp_path: Path, backend: str
):
    with smtp_server() as mailbox:
        smtp = {f"NETWEAVE_{name}": value for name, value in mailbox.config.items()}
        env = {**support.server_env(store_settings, tmp_path), **smtp}
        loaded = support.flask(env, "demo", "load")
        assert loaded.returncode == 0, loaded.stderr
        expected = _due_now(store_settings)
        assert len(expected) >= 4
        with support.running_service(env, demo=False) as (base, process):
            support.wait_until(lambda: len(mailbox.messages) >= len(expected), "every digest delivered", process, 150)
            mail = {m["To"]: m for m in mailbox.messages}
            assert sorted(mail) == expected and len(mailbox.messages) == len(expected)
            # The worker's next run (each minute) finds every digest recorded: nothing more goes.
            time.sleep(62 - datetime.now(UTC).second)
            assert len(mailbox.messages) == len(expected)

            dana = mail[DANA]
            assert re.match(r"\d introductions? to make: ", dana["Subject"])
            assert dana["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            html = dana.get_body(("html",)).get_content()
            introduce = urlsplit(re.search(r'href="([^"]+/email/act/[^"]+)"', html).group(1)).path

            with chromium() as browser:
                phone = browser.new_page(viewport={"width": 390, "height": 844})
                phone.set_content(html)
                expect(phone.get_by_role("link", name="Introduce them").first).to_be_visible()
                width = phone.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"the email is {width}px wide on a 390px phone"
                assert serious_violations(phone) == []
                if backend == "embedded":
                    screenshot(phone, "weekly-email")

                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(base + introduce)
                expect(page).to_have_url(re.compile(r"/sign-in\?next="))
                page.get_by_label("Email").fill(DANA)
                page.get_by_label("Password").fill(demo.DEMO_PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                expect(page.get_by_role("heading", level=1)).to_contain_text("Introduce ")
                assert serious_violations(page) == []
                page.get_by_role("button", name="Introduce them").click()
                expect(page).to_have_url(re.compile(r"/introductions/[0-9a-f]+$"))
                page.goto(base + introduce)  # the same link again
                expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
                assert serious_violations(page) == []
                page.goto(base + urlsplit(dana["List-Unsubscribe"].strip("<>")).path)
                assert serious_violations(page) == []
                page.get_by_role("button", name="Unsubscribe").click()
                expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
                assert serious_violations(page) == []

                manager = browser.new_page(viewport={"width": 1280, "height": 900})
                manager.goto(base + "/sign-in")
                manager.get_by_label("Email").fill(demo.DEMO_MANAGER[0])
                manager.get_by_label("Password").fill(demo.DEMO_PASSWORD)
                manager.get_by_role("button", name="Sign in").click()
                for email in expected:
                    manager.goto(f"{base}/settings/email?salesperson={email}")
                    expect(manager.get_by_text(mail[email]["Subject"], exact=True)).to_be_visible()
                    expect(manager.get_by_text(re.compile(r"recorded for \d{4}-W\d{2}: sent"))).to_be_visible()
                assert serious_violations(manager) == []
                if backend == "embedded":
                    screenshot(manager, "email-preview")
