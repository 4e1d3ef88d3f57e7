"""Introductions: the board (every introduction of my book by status, with follow-ups for
those waiting too long) and one introduction's page (the composer: the two drafts, editable
until asking begins, copied, opened in a mail program or emailed through the app; its steps;
moving it on; the 1-5 outcome from either side). Everything goes through
services.introductions."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from graph.records import Introduction, IntroStatus
from netweave.digest import mailer
from netweave.jobs import get_jobs
from netweave.services import introductions
from netweave.services.access import Conflict, Invalid, NotAllowed, NotFound
from netweave.store import get_store
from netweave.web.auth import viewer
from netweave.web.forms import show_problems

bp = Blueprint("introductions", __name__)

LABELS = {
    IntroStatus.PROPOSED: "Drafted", IntroStatus.ASKED: "Asked", IntroStatus.ACCEPTED: "Both said yes",
    IntroStatus.INTRODUCED: "Introduced", IntroStatus.MET: "Met", IntroStatus.WON: "Business won",
    IntroStatus.DECLINED: "Declined", IntroStatus.CLOSED: "Closed",
}  # fmt: skip
MOVE_LABELS = {
    IntroStatus.ASKED: "Mark asked", IntroStatus.ACCEPTED: "Both said yes", IntroStatus.INTRODUCED: "Mark introduced",
    IntroStatus.MET: "They met", IntroStatus.WON: "Business won", IntroStatus.DECLINED: "Declined",
    IntroStatus.CLOSED: "Close",
}  # fmt: skip
BOARD = (IntroStatus.PROPOSED, IntroStatus.ASKED, IntroStatus.ACCEPTED, IntroStatus.INTRODUCED, IntroStatus.MET)
FINISHED = (IntroStatus.WON, IntroStatus.DECLINED, IntroStatus.CLOSED)


class MoveForm(FlaskForm):
    status = SelectField(choices=[SelectChoice(s.value) for s in IntroStatus], validators=[InputRequired()])
    steps = IntegerField(validators=[InputRequired(), NumberRange(0, 1000)])
    note = TextAreaField(validators=[Optional(), Length(max=500)])


class MessagesForm(FlaskForm):
    message_a = TextAreaField(validators=[DataRequired("Write the message."), Length(max=introductions.MAX_MESSAGE)])
    message_b = TextAreaField(validators=[DataRequired("Write the message."), Length(max=introductions.MAX_MESSAGE)])
    steps = HiddenField(validators=[InputRequired()])


class AskForm(FlaskForm):
    steps = IntegerField(validators=[InputRequired(), NumberRange(0, 1000)])


class RateForm(FlaskForm):
    business_id = SelectField("Whose view", validators=[InputRequired()])
    rating = SelectField(
        "How did it go?",
        choices=[SelectChoice(str(n), label) for n, label in
                 ((5, "5 · great"), (4, "4 · good"), (3, "3 · so-so"), (2, "2 · poor"), (1, "1 · bad"))],
        validators=[InputRequired()],
    )  # fmt: skip
    comment = TextAreaField("What they said (optional)", validators=[Optional(), Length(max=1000)])


def _introduction(introduction_id: str) -> Introduction:
    try:
        return introductions.get(get_store(), viewer(), introduction_id)
    except NotFound:
        abort(404)


def _names(items: list[Introduction]) -> dict[str, str]:
    ids = {i for intro in items for i in (intro.a_id, intro.b_id)}
    return {b.id: b.record.name for b in get_store().get_businesses(sorted(ids)).values()}


@bp.get("/introductions")
@login_required
def board() -> ResponseReturnValue:
    items = introductions.list_for(get_store(), viewer(), limit=1000)
    now = datetime.now(UTC)
    columns = {status: [i for i in items if i.status is status] for status in BOARD}
    finished = [i for i in items if i.status in FINISHED][:50]
    follow_ups = sorted((i for i in items if introductions.waiting(i, now)), key=lambda i: i.updated_at)
    return render_template(
        "introductions/board.html", columns=columns, finished=finished, follow_ups=follow_ups, names=_names(items),
        labels=LABELS, move_labels=MOVE_LABELS, next_steps=introductions.NEXT, now=now, move=MoveForm(),
    )  # fmt: skip


@bp.get("/introductions/<introduction_id>")
@login_required
def detail(introduction_id: str) -> ResponseReturnValue:
    return _detail_page(_introduction(introduction_id))


def _detail_page(
    intro: Introduction, messages: MessagesForm | None = None, rate: RateForm | None = None, status: int = 200
) -> ResponseReturnValue:
    a, b = introductions.sides(get_store(), viewer(), intro)
    if messages is None:
        messages = MessagesForm(data={"message_a": intro.message_a, "message_b": intro.message_b,
                                      "steps": str(len(intro.steps))})  # fmt: skip
    rate = rate or RateForm()
    rate.business_id.choices = [SelectChoice(a.id, a.name), SelectChoice(b.id, b.name)]
    settings = mailer.MailSettings.from_config(current_app.config)
    subject = {a.id: f"An introduction to {b.name}?", b.id: f"An introduction to {a.name}?"}
    mailto = {
        side.id: f"mailto:{quote(side.email or '')}?subject={quote(subject[side.id])}&body={quote(text)}"
        for side, text in ((a, intro.message_a), (b, intro.message_b))
    }
    return render_template(
        "introductions/detail.html", intro=intro, a=a, b=b, messages=messages, rate=rate, mailto=mailto,
        mail_on=settings.configured, labels=LABELS, move_labels=MOVE_LABELS, next_steps=introductions.NEXT,
        move=MoveForm(), ask=AskForm(), rateable=intro.status not in (IntroStatus.PROPOSED, IntroStatus.ASKED,
                                                                     IntroStatus.DECLINED),
    ), status  # fmt: skip


@bp.post("/introductions/<introduction_id>/move")
@login_required
def move(introduction_id: str) -> ResponseReturnValue:
    intro = _introduction(introduction_id)
    form = MoveForm()
    back = request.form.get("back") == "board"
    target = url_for("introductions.board") if back else url_for("introductions.detail", introduction_id=intro.id)
    if not form.validate():
        flash("Nothing was changed: that move was not understood.", "error")
        return redirect(target), 303
    try:
        moved = introductions.advance(get_store(), get_jobs(), viewer(), intro.id, IntroStatus(form.status.data),
                                      form.note.data or "", expected_steps=form.steps.data)  # fmt: skip
    except Conflict as error:
        flash(f"Nothing was changed: {error}.", "error")
        return redirect(target), 303
    flash(f"{LABELS[moved.status]}: saved.", "info")
    return redirect(target), 303


@bp.post("/introductions/<introduction_id>/messages")
@login_required
def messages(introduction_id: str) -> ResponseReturnValue:
    intro = _introduction(introduction_id)
    form = MessagesForm()
    if not form.validate() or not (form.steps.data or "").isdigit():
        return _detail_page(intro, messages=form, status=400)
    try:
        introductions.edit_messages(get_store(), viewer(), intro.id, form.message_a.data or "",
                                    form.message_b.data or "", expected_steps=int(form.steps.data))  # fmt: skip
    except Invalid as error:
        show_problems(form, error)
        return _detail_page(intro, messages=form, status=400)
    except Conflict as error:
        flash(f"Not saved: {error}.", "error")
        return redirect(url_for("introductions.detail", introduction_id=intro.id)), 303
    flash("Messages saved.", "info")
    return redirect(url_for("introductions.detail", introduction_id=intro.id)), 303


@bp.post("/introductions/<introduction_id>/ask")
@login_required
def ask(introduction_id: str) -> ResponseReturnValue:
    intro = _introduction(introduction_id)
    form = AskForm()
    here = url_for("introductions.detail", introduction_id=intro.id)
    if not form.validate():
        flash("Nothing was sent: reload the page and try again.", "error")
        return redirect(here), 303
    settings = mailer.MailSettings.from_config(current_app.config)
    try:
        introductions.email_asks(get_store(), get_jobs(), viewer(), intro.id, settings,
                                 expected_steps=form.steps.data)  # fmt: skip
    except (Invalid, Conflict, mailer.MailNotConfigured, mailer.MailFailed) as error:
        flash(f"Not asked: {error}.", "error")
        return redirect(here), 303
    flash("Both sides were emailed their own message, and the introduction is marked asked.", "info")
    return redirect(here), 303


@bp.post("/introductions/<introduction_id>/rate")
@login_required
def rate(introduction_id: str) -> ResponseReturnValue:
    intro = _introduction(introduction_id)
    form = RateForm()
    form.business_id.choices = [SelectChoice(intro.a_id), SelectChoice(intro.b_id)]
    if not form.validate():
        return _detail_page(intro, rate=form, status=400)
    try:
        introductions.rate(get_store(), get_jobs(), viewer(), intro.id, form.business_id.data, int(form.rating.data),
                           form.comment.data or "")  # fmt: skip
    except (ValueError, NotAllowed) as error:  # Conflict and Invalid are ValueErrors
        flash(f"Not saved: {error}.", "error")
    else:
        flash("Thanks: the outcome is recorded, and matching learns from it.", "info")
    return redirect(url_for("introductions.detail", introduction_id=intro.id)), 303
