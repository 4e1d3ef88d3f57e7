"""Test helpers for the web app through Flask's client: forms carry their CSRF token, as a
browser's would."""

from __future__ import annotations

import html
import re
from typing import Any

from flask.testing import FlaskClient

PASSWORD = "correct horse battery"  # what the tests set for everyone

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1) or found.group(2)


class Session:
    """One browser session: `post_form` fetches the page that holds the form first, for its token."""

    def __init__(self, client: FlaskClient):
        self.client = client

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def post_form(self, page: str, action: str, data: dict[str, str], **kwargs: Any) -> Any:
        token = csrf_of(self.client.get(page).get_data(as_text=True))
        return self.client.post(action, data={"csrf_token": token, **data}, **kwargs)

    def sign_in(self, login: str, password: str = PASSWORD) -> Any:
        return self.post_form("/sign-in", "/sign-in", {"login": login, "password": password})


def text_of(response: Any) -> str:
    """The page's words, tags dropped, entities read and spaces collapsed."""
    words = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(words)).strip()
