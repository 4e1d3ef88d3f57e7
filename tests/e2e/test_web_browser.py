"""The salesperson web app in headless Chromium against the running service (gunicorn and
the worker, demo loaded), on both backends: sign in, filter Today, act on a card in place,
browse accounts, be refused another book's account, and pass axe-core on every page.
Screenshots of the main pages land in docs/screenshots/ (the README shows Today)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from netweave import demo
from tests.support.browser import chromium, screenshot, serious_violations

pytestmark = pytest.mark.e2e

DANA = "dana.whitfield@netweave-demo.com"
KEN = "ken.okafor@netweave-demo.com"


def wait_for_script(page: Page, expression: str, timeout: float = 15.0) -> None:
    """Poll a page's state (wait_for_function evaluates a string in the page, which the app's
    CSP rightly refuses)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"not within {timeout} s: {expression}"
        time.sleep(0.1)


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

        for path in ("/reset", "/reset/not-a-real-link"):  # asking for a link, choosing a new password
            page.goto(base + path)
            assert serious_violations(page) == []
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
        expect(page.locator("ol.cards > li").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1, "Today fits a phone"
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


def test_an_introduction_from_a_card_through_the_composer_and_board_to_its_outcome(service, backend):
    base, _ = service
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, base, DANA)
        card = page.locator("ol.cards > li").first
        card.get_by_role("button", name="Introduce").click()
        card.get_by_role("link", name="Edit the messages and send them").click()
        expect(page.get_by_role("heading", name="Ask each side first")).to_be_visible()
        first_message = page.locator("textarea").first
        first_message.fill("Hi there,\n\nWould you like an introduction? Only if you both say yes.\n\nDana")
        page.get_by_role("button", name="Save the messages").click()
        expect(page.locator(".flash")).to_contain_text("Messages saved")
        expect(page.locator("textarea").first).to_have_value(re.compile("Would you like an introduction"))
        assert serious_violations(page) == []
        if backend == "embedded":
            screenshot(page, "composer")

        here = page.url
        # Moved on from the board, with a click.
        page.get_by_role("link", name="Introductions", exact=True).click()
        drafted = page.locator("section.column", has=page.get_by_role("heading", name="Drafted 1"))
        drafted.get_by_role("button", name="Mark asked").click()
        expect(page.get_by_role("heading", name="Asked 1")).to_be_visible()
        page.goto(here)
        expect(page.locator(".status")).to_have_text("Asked")
        page.get_by_role("button", name="Both said yes").click()
        expect(page.locator(".status")).to_have_text("Both said yes")
        page.get_by_label("How did it go?").select_option("5")
        page.get_by_label("What they said (optional)").fill("A great fit")
        page.get_by_role("button", name="Record").click()
        expect(page.get_by_text("5/5")).to_be_visible()

        page.get_by_role("link", name="Introductions", exact=True).click()
        expect(page.get_by_role("heading", name="Both said yes 1")).to_be_visible()
        assert serious_violations(page) == []
        if backend == "embedded":
            screenshot(page, "introductions")


def test_the_network_view_draws_the_neighbourhood_and_explains_a_line(service, backend):
    base, _ = service
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, base, DANA)
        page.locator("ol.cards > li").first.get_by_role("heading", level=2).get_by_role("link").first.click()
        page.get_by_role("link", name=re.compile("network$")).click()
        expect(page.get_by_role("heading", name=re.compile("network$"))).to_be_visible()
        wait_for_script(page, "window.netweaveNetwork && window.netweaveNetwork.nodes().length > 1")
        listed = page.locator("table.customers tbody tr").count()
        assert page.evaluate("window.netweaveNetwork.edges().length") == listed
        page.evaluate("window.netweaveNetwork.edges()[0].emit('tap')")
        expect(page.locator("#network-detail")).not_to_contain_text("Select a line")
        assert serious_violations(page) == []
        if backend == "embedded":
            screenshot(page, "network")


def test_a_manager_reads_the_loyalty_dashboard_for_the_team_and_one_book(service, backend):
    base, _ = service
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, base, demo.DEMO_MANAGER[0])
        page.get_by_role("link", name="Loyalty").click()
        expect(page.get_by_role("heading", name=re.compile("the whole team"))).to_be_visible()
        wait_for_script(page, "window.netweaveChart && window.netweaveChart.data.labels.length === 12")
        assert serious_violations(page) == []
        if backend == "embedded":
            screenshot(page, "loyalty")
        page.get_by_label("Book").select_option(DANA)
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_role("heading", name=re.compile("Dana Whitfield's book"))).to_be_visible()
        expect(page.get_by_text(re.compile(r"customers with nothing in 90 days"))).to_be_visible()


def test_settings_change_the_weekly_email_and_make_an_api_token(service, backend):
    base, _ = service
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, base, DANA)
        page.get_by_role("link", name="Dana Whitfield").click()
        expect(page.get_by_role("heading", name="Settings")).to_be_visible()
        page.get_by_label("On", exact=True).select_option("Thursday")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".flash")).to_contain_text("preferences are saved")
        expect(page.get_by_label("On", exact=True)).to_have_value("3")
        page.get_by_label("What it is for").fill("My CRM")
        page.get_by_role("button", name="Make a token").click()
        expect(page.locator("#new-token")).to_have_text(re.compile(r"^nw_"))
        assert serious_violations(page) == []
        if backend == "embedded":
            screenshot(page, "settings")


def test_the_api_reference_renders_every_operation_and_passes_axe(service, backend):
    base, _ = service
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        refused: list[str] = []
        page.on("response", lambda sent: refused.append(f"{sent.status} {sent.url}") if sent.status >= 400 else None)
        page.goto(base + "/api/v1/docs")
        operations = page.locator(".swagger-ui .opblock")
        try:
            expect(operations.first).to_be_visible(timeout=15000)
        except AssertionError as error:
            raise AssertionError(f"no operation shown; refused: {refused}, console: {errors}") from error
        spec = page.request.get(base + "/api/v1/openapi.json").json()
        expected = sum(len([m for m in item if m != "parameters"]) for item in spec["paths"].values())
        assert operations.count() == expected
        # Operations open in place with their parameters, request body and a form to try them.
        page.locator(".swagger-ui .opblock-get .opblock-summary").first.click()
        expect(page.locator(".swagger-ui .opblock-get.is-open .parameters").first).to_be_visible()
        page.locator(".swagger-ui .opblock-post .opblock-summary").first.click()
        expect(page.locator(".swagger-ui .opblock-post.is-open").first).to_be_visible()
        page.get_by_role("button", name="Try it out").first.click()
        expect(page.get_by_role("button", name="Execute").first).to_be_visible()
        assert serious_violations(page) == []
        assert errors == []
        if backend == "embedded":
            screenshot(page, "api-reference")
