"""The weekly email's side of the web app: its one-click links (a page that says what the
link does and one button to do it: mail scanners open links, they do not press buttons), the
one-click unsubscribe (RFC 8058: a POST with no session), and the preview of the email.
Everything through the service layer (services/digests.py)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from graph.records import DigestStatus
from netweave.digest.links import LinkRefused
from netweave.jobs import get_jobs
from netweave.services import digests
from netweave.services.access import Conflict, NotAllowed, NotFound
from netweave.store import get_store
from netweave.web.auth import viewer

bp = Blueprint("email", __name__)

# The email's HTML, shown in the preview's frame: its styles are inline (as mail clients want
# them), it runs no script, and only this site may frame it.
MESSAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"


def _settings() -> digests.DigestSettings:
    return digests.DigestSettings.from_config(current_app.config)


def _refused(why: str, status: int) -> ResponseReturnValue:
    return render_template("email/refused.html", why=why), status


@bp.get("/email/act/<token>")
@login_required
def confirm(token: str) -> ResponseReturnValue:
    try:
        view = digests.read_link(get_store(), viewer(), _settings(), token)
    except LinkRefused as error:
        return _refused(str(error), 410)
    except NotAllowed as error:
        return _refused(str(error), 403)
    except NotFound as error:
        return _refused(str(error), 404)
    return render_template("email/confirm.html", view=view, form=FlaskForm())


@bp.post("/email/act/<token>")
@login_required
def act(token: str) -> ResponseReturnValue:
    if not FlaskForm().validate():
        abort(400)
    try:
        outcome = digests.use_link(get_store(), get_jobs(), viewer(), _settings(), token)
    except LinkRefused as error:
        return _refused(str(error), 410)
    except NotAllowed as error:
        return _refused(str(error), 403)
    except NotFound as error:
        return _refused(f"{error}: the suggestions have changed since the email was sent", 404)
    except (Conflict, ValueError) as error:
        return _refused(str(error), 409)
    flash(outcome.message, "info")
    if outcome.introduction_id:
        return redirect(url_for("introductions.detail", introduction_id=outcome.introduction_id)), 303
    return redirect(url_for("today.index")), 303


@bp.route("/email/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> ResponseReturnValue:
    """GET asks to confirm; POST (our button, or a mail client's one-click) unsubscribes."""
    if request.method == "GET":
        try:
            _settings().signer.read_unsubscribe(token)
        except LinkRefused as error:
            return _refused(str(error), 410)
        return render_template("email/unsubscribe.html", token=token, done=False)
    try:
        person = digests.unsubscribe(get_store(), _settings(), token)
    except LinkRefused as error:
        return _refused(str(error), 410)
    return render_template("email/unsubscribe.html", token=token, done=True, person=person)


def _previewed() -> tuple[str, str | None]:
    """Whose email to preview (a manager may pick any salesperson) and which week."""
    wanted = (request.args.get("salesperson") or current_user.salesperson.id).strip().lower()
    week = request.args.get("week") or None
    return wanted, week


def _preview() -> digests.Digest:
    wanted, week = _previewed()
    try:
        return digests.preview(get_store(), viewer(), wanted, _settings(), week=week)
    except (NotAllowed, NotFound):  # another book's email is not found
        abort(404)
    except ValueError as error:  # Invalid: a malformed week
        abort(400, description=str(error))


@bp.get("/settings/email")
@login_required
def preview() -> ResponseReturnValue:
    digest = _preview()
    message = digests.message(digest, _settings())
    people = get_store().list_salespeople() if current_user.is_manager else []
    recorded = get_store().get_digest(digest.salesperson_id, digest.week)
    return render_template(
        "email/preview.html", digest=digest, message=message, people=people, recorded=recorded,
        empty=digest.status is DigestStatus.EMPTY,
    )  # fmt: skip


@bp.get("/settings/email/message.html")
@login_required
def preview_html() -> ResponseReturnValue:
    digest = _preview()
    return digest.html, 200, {
        "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": MESSAGE_POLICY,
        "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "no-store",
    }  # fmt: skip
