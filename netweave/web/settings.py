"""Settings: my weekly-email preferences, and my API tokens (made here for my own book, the
secret shown once; revoked at once). Both through the service layer (accounts, tokens)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from graph.records import TokenScope
from netweave.services import accounts, tokens
from netweave.services.access import Invalid, NotAllowed, NotFound
from netweave.store import get_store
from netweave.web.auth import viewer
from netweave.web.forms import show_problems

bp = Blueprint("settings", __name__)

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class DigestForm(FlaskForm):
    weekly = BooleanField("Send me the weekly email of introductions to make")
    weekday = SelectField("On", choices=[SelectChoice(str(n), day) for n, day in enumerate(DAYS)],
                          validators=[InputRequired()])  # fmt: skip
    hour = SelectField("At", choices=[SelectChoice(str(h), f"{h:02d}:00") for h in range(24)],
                       validators=[InputRequired()])  # fmt: skip
    timezone = SelectField("Time zone", validators=[InputRequired()])
    size = SelectField("With", choices=[SelectChoice(str(n), f"{n} introductions") for n in (3, 5, 10, 20)],
                       validators=[InputRequired()])  # fmt: skip
    note_when_empty = BooleanField("Send a short note in a week with nothing new")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = [SelectChoice(z, z.replace("_", " ")) for z in sorted(accounts.time_zones())]


class TokenForm(FlaskForm):
    name = StringField("What it is for", validators=[DataRequired("Name the token."), Length(max=100)])
    scopes = SelectMultipleField(
        "It may",
        choices=[
            SelectChoice(TokenScope.READ.value, "read my book"),
            SelectChoice(TokenScope.WRITE.value, "change it"),
        ],
        validators=[DataRequired("Choose what it may do.")],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        default=[TokenScope.READ.value],
    )


class RevokeForm(FlaskForm):
    token_id = HiddenField(validators=[DataRequired(), Length(max=40)])


def _page(digest: DigestForm | None = None, token: TokenForm | None = None, secret: str | None = None,
          status: int = 200, headers: dict[str, str] | None = None) -> ResponseReturnValue:  # fmt: skip
    store = get_store()
    if digest is None:
        saved = accounts.digest_preferences(store, viewer())
        digest = DigestForm(data={
            "weekly": saved.weekly, "weekday": str(saved.weekday), "size": str(saved.size), "hour": str(saved.hour),
            "timezone": saved.timezone, "note_when_empty": saved.note_when_empty,
        })  # fmt: skip
    mine = [t for t in tokens.list_tokens(store, viewer()) if t.salesperson_id == current_user.salesperson.id]
    return render_template("settings.html", digest=digest, token=token or TokenForm(), tokens=mine, secret=secret,
                           revoke=RevokeForm()), status, headers or {}  # fmt: skip


@bp.get("/settings")
@login_required
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/settings/digest")
@login_required
def digest() -> ResponseReturnValue:
    form = DigestForm()
    if not form.validate():
        return _page(digest=form, status=400)
    try:
        accounts.set_digest_preferences(
            get_store(), viewer(), weekly=form.weekly.data, weekday=int(form.weekday.data),
            size=int(form.size.data), hour=int(form.hour.data), timezone=form.timezone.data,
            note_when_empty=form.note_when_empty.data,
        )  # fmt: skip
    except Invalid as error:
        show_problems(form, error)
        return _page(digest=form, status=400)
    flash("Your weekly email preferences are saved.", "info")
    return redirect(url_for("settings.index")), 303


@bp.post("/settings/tokens")
@login_required
def create_token() -> ResponseReturnValue:
    form = TokenForm()
    if not form.validate():
        return _page(token=form, status=400)
    issued = tokens.create_token(get_store(), viewer(), form.name.data or "", [TokenScope(s) for s in form.scopes.data],
                                 salesperson_id=current_user.salesperson.id)  # fmt: skip
    # Shown once, on this answer only (never stored, never redirected through a URL or a flash),
    # and kept out of every cache.
    return _page(secret=issued.secret, status=201, headers={"Cache-Control": "no-store"})


@bp.post("/settings/tokens/revoke")
@login_required
def revoke_token() -> ResponseReturnValue:
    form = RevokeForm()
    if form.validate():
        try:
            tokens.revoke_token(get_store(), viewer(), form.token_id.data)
        except (NotFound, NotAllowed):
            flash("No such token of yours.", "error")
        else:
            flash("The token is revoked: it no longer works.", "info")
    return redirect(url_for("settings.index")), 303
