"""Today: the salesperson's best open suggestions as cards, filtered, acted on in place.

Each card's actions are plain forms (they work without JavaScript: the page reloads with a
note); with htmx loaded, the card is swapped for the outcome instead. Every action goes
through the service layer (matches.record_feedback, introductions.propose).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, DecimalField, HiddenField, SearchField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from graph import GraphStore, SalespersonSummary
from graph.records import DismissReason, FeedbackKind
from netweave.jobs import get_jobs
from netweave.services import introductions, matches
from netweave.services import today as today_service
from netweave.services.access import Conflict, NotAllowed, NotFound
from netweave.store import get_store
from netweave.web.auth import viewer

bp = Blueprint("today", __name__)

ACTIONS = {
    "dismiss": "Not a fit",
    "competitor": "They compete",
    "snooze": "Not now",
    "already_know": "They already know each other",
    "introduce": "Introduce",
}
_FEEDBACK = {
    "dismiss": DismissReason.NOT_RELEVANT,
    "competitor": DismissReason.COMPETITOR,
    "snooze": DismissReason.BAD_TIMING,
    "already_know": DismissReason.ALREADY_KNOW,
}


class FilterForm(FlaskForm):
    """The GET filters (no CSRF: they change nothing)."""

    class Meta:
        csrf = False

    q = SearchField("Search", validators=[Optional(), Length(max=100)])
    city = StringField("City", validators=[Optional(), Length(max=100)])
    kind = StringField("Kind", validators=[Optional(), Length(max=100)])
    min_score = DecimalField("Minimum score", places=0, validators=[Optional(), NumberRange(0, 100)])
    show_all = BooleanField("Include pairs introduced before")
    book = StringField("Book", validators=[Optional(), Length(max=320)])


class ActForm(FlaskForm):
    business_id = HiddenField(validators=[DataRequired(), Length(max=200)])
    other_id = HiddenField(validators=[DataRequired(), Length(max=200)])
    action = SelectField(choices=[SelectChoice(v, label) for v, label in ACTIONS.items()], validators=[InputRequired()])


def _book(store: GraphStore, wanted: str | None) -> tuple[str, list[SalespersonSummary]]:
    """Whose book to show, and the books a manager can pick from: a salesperson's own; a
    manager's pick (else their own book, else the first)."""
    me = current_user.salesperson
    if not current_user.is_manager:
        return me.id, []
    books = store.list_salespeople()
    people = [s.salesperson.id for s in books if s.business_count]
    if wanted and wanted in people:
        return wanted, books
    return (me.id if me.id in people or not people else people[0]), books


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    store = get_store()
    form = FilterForm(request.args)
    if not form.validate():
        return render_template("today/index.html", form=form, page=None, book=None, books=[]), 400
    book, books = _book(store, form.book.data)
    filters = today_service.TodayFilters(
        search=(form.q.data or "").strip(),
        city=(form.city.data or "").strip(),
        kind=(form.kind.data or "").strip(),
        min_score=float(form.min_score.data or 0) / 100,
        never_introduced=not form.show_all.data,
    )
    page = today_service.today(store, viewer(), book, filters)
    matches.mark_shown(store, viewer(), [card.view for card in page.cards], channel="web")
    return render_template("today/index.html", form=form, page=page, book=book, books=books, act=ActForm())


@bp.post("/today/act")
@login_required
def act() -> ResponseReturnValue:
    form = ActForm()
    partial = request.headers.get("HX-Request") == "true"
    if not form.validate():
        problems = "; ".join(f"{name}: {', '.join(errors)}" for name, errors in form.errors.items())
        if partial:
            return render_template("today/_outcome.html", error=f"Nothing was changed ({problems})."), 400
        flash(f"Nothing was changed ({problems}).", "error")
        return redirect(url_for("today.index")), 303
    store, action = get_store(), form.action.data
    business_id, other_id = form.business_id.data, form.other_id.data
    introduction = None
    try:
        if action == "introduce":
            introduction = introductions.propose(store, get_jobs(), viewer(), business_id, other_id)
        else:
            matches.record_feedback(store, get_jobs(), viewer(), business_id, other_id, FeedbackKind.DISMISSED,
                                    _FEEDBACK[action].value, channel="web")  # fmt: skip
    except (NotFound, NotAllowed):
        abort(404)
    except ValueError as error:  # Conflict (an open introduction already), or a pair that is no pair
        message = f"Nothing was changed: {error}"
        if partial:
            return render_template("today/_outcome.html", error=message), 409 if isinstance(error, Conflict) else 400
        flash(message, "error")
        return redirect(url_for("today.index")), 303
    names = {b.id: b.record.name for b in store.get_businesses([business_id, other_id]).values()}
    pair = f"{names.get(business_id, business_id)} and {names.get(other_id, other_id)}"
    done = {
        "introduce": f"Introduction of {pair} drafted: ask each side first.",
        "dismiss": f"Dismissed {pair}: matching learns from it.",
        "competitor": f"Marked {pair} as competitors: they will not be suggested again.",
        "snooze": f"Snoozed {pair}: it may come back later.",
        "already_know": f"Noted that {pair} already know each other.",
    }[action]
    if partial:
        return render_template("today/_outcome.html", message=done, introduction=introduction, names=names)
    flash(done, "info")
    return redirect(url_for("today.index")), 303
