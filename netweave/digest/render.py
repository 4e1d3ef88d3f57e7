"""The weekly email as a message: subject, plain text and HTML from one set of facts
(`Content`), through two Jinja templates that read the same fields; the HTML's CSS is inlined
by css-inline (mail clients drop <style> blocks; the one kept is for phones' media queries)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

_TEMPLATES = Path(__file__).parent / "templates"
_environment = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_inliner = css_inline.CSSInliner(keep_style_tags=True)


@dataclass(frozen=True)
class Side:
    name: str
    about: str  # kind and city: "Florist, Saint Paul"
    gains: str  # why this side gains, one line


@dataclass(frozen=True)
class Suggestion:
    a: Side  # in the salesperson's book
    b: Side
    score: int  # 0..100
    why_now: str
    introduce_url: str
    snooze_url: str
    dismiss_url: str


@dataclass(frozen=True)
class FollowUp:
    a_name: str
    b_name: str
    made_on: str  # "Nov 2"
    status: str
    rate_urls: tuple[tuple[int, str], ...]  # (1, url) .. (5, url)
    open_url: str


@dataclass(frozen=True)
class Content:
    first_name: str
    week_label: str  # "week of Nov 23"
    suggestions: tuple[Suggestion, ...]
    follow_ups: tuple[FollowUp, ...]
    today_url: str
    preferences_url: str
    unsubscribe_url: str
    expires_on: str  # when the links stop working: "Dec 13"

    @property
    def empty(self) -> bool:
        return not self.suggestions and not self.follow_ups


def subject(content: Content) -> str:
    count = len(content.suggestions)
    if count:
        first = content.suggestions[0]
        more = f" and {count - 1} more" if count > 1 else ""
        return f"{count} introduction{'s' if count > 1 else ''} to make: {first.a.name} and {first.b.name}{more}"
    if content.follow_ups:
        return f"How did {len(content.follow_ups)} introduction{'s' if len(content.follow_ups) > 1 else ''} go?"
    return "No new introductions this week"


def render(content: Content) -> tuple[str, str, str]:
    """(subject, text, html) of the email."""
    text = _environment.get_template("digest.txt").render(c=content)
    html = _inliner.inline(_environment.get_template("digest.html").render(c=content))
    return subject(content), text, html
