"""The salesperson web app in headless Chromium against the running service (gunicorn and
the worker, demo loaded), on both backends: sign in, filter Today, act on a card in place,
browse accounts, be refused another book's account, and pass axe-core on every page.
Screenshots of the main pages land in docs/screenshots/ (the README shows Today)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from netweave import demo
from tests.support.browser import chromium, screenshot, serious_violations

pytestmark = pytest.mark.e2e

DANA = "dana.whitfield@netweave-demo.com"
KEN = "ken.okafor@netweave-demo.com"


def sign_in(page: Page, base: str, login: str) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/sign-in"))
    page.get_by_label("Email").fill(login)
    page.get_by_label("Password").fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(base + "/")


def test_a_salesperson_signs_in_filters_and_acts_on_a_card_in_place(service, backend):
    base, _ = service
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

        page.goto(base + "/sign-in")
        assert serious_violations(page) == []
        if backend == "embedded":
            screenshot(page, "sign-in")
        sign_in(page, base, DANA)
        cards = page.locator("ol.cards > li")
        expect(cards.first).to_be_visible()
        before = cards.count()
        assert before >= 10
        expect(cards.first.get_by_role("heading", level=3).first).to_contain_text("gains")
        assert serious_violations(page) == []
        if backend == "embedded":
            screenshot(page, "today")

        # Filter: a high minimum score leaves fewer cards, every one at or above it.
        page.get_by_label("Minimum score").fill("60")
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(r"min_score=60"))
        scores = [int(s) for s in page.locator("ol.cards .score").all_inner_texts()]
        assert scores and all(score >= 60 for score in scores) and len(scores) <= before

        # Act in place: the card becomes its outcome, the page is not reloaded.
        page.evaluate("window.stillHere = true")
        first = cards.first
        names = first.get_by_role("heading", level=2).inner_text()
        first.get_by_role("button", name="Not now").click()
        expect(first.locator(".flash")).to_contain_text("Snoozed")
        assert page.evaluate("window.stillHere") is True
        page.reload()
        assert names not in page.locator("ol.cards h2").all_inner_texts()

        # Introduce from a card: the two drafts appear in place.
        cards.first.get_by_role("button", name="Introduce").click()
        expect(cards.first.locator(".drafts pre")).to_have_count(2)
        expect(cards.first.locator(".flash")).to_contain_text("drafted")
        assert [e for e in errors if "Content Security Policy" in e or "Refused" in e] == []


def test_accounts_another_books_account_and_a_phone_sized_screen(service, backend):
    base, _ = service
    rows = demo.generate().rows
    kens = next(r["id"] for r in rows if r["salesperson"] == KEN)
    danas = next(r["id"] for r in rows if r["salesperson"] == DANA)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        sign_in(page, base, DANA)
        page.get_by_role("link", name="Accounts").click()
        expect(page.get_by_role("heading", name="Accounts")).to_be_visible()
        assert serious_violations(page) == []
        if backend == "embedded":
            screenshot(page, "accounts-phone")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than a phone's screen"

        answer = page.goto(base + f"/customers/{danas}")
        assert answer.status == 200
        assert serious_violations(page) == []
        answer = page.goto(base + f"/customers/{kens}")
        assert answer.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        assert serious_violations(page) == []


def test_the_keyboard_alone_signs_in_and_reaches_the_cards(service):
    base, _ = service
    with chromium() as browser:
        page = browser.new_page()
        page.goto(base + "/sign-in")
        expect(page.get_by_label("Email")).to_be_focused()  # ready to type
        page.keyboard.type(DANA)
        page.keyboard.press("Tab")
        page.keyboard.type(demo.DEMO_PASSWORD)
        page.keyboard.press("Enter")
        expect(page).to_have_url(base + "/")
        page.keyboard.press("Tab")  # the skip link first
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        first_action = page.locator("ol.cards > li").first.get_by_role("button", name="Introduce")
        for _ in range(60):
            page.keyboard.press("Tab")
            if first_action.evaluate("button => button === document.activeElement"):
                break
        expect(first_action).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("ol.cards > li").first.locator(".drafts pre")).to_have_count(2)
