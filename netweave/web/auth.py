"""Signing in and out of the web app, and resetting a forgotten password by an emailed link.

Flask-Login keeps who is signed in (a session cookie naming the salesperson and a fingerprint
of their password hash: see services.accounts); Flask-WTF checks the CSRF token of every form.
The passwords themselves are argon2 hashes in the graph store, set from the CLI
(`flask --app app salespeople set-password`) or by a reset link.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from graph import Role, Salesperson
from netweave.digest import mailer
from netweave.services import accounts
from netweave.services.access import Invalid, Viewer
from netweave.store import get_store
from netweave.web.forms import show_problems

bp = Blueprint("auth", __name__)


class SignedIn(UserMixin):
    """The salesperson behind a browser session."""

    def __init__(self, salesperson: Salesperson, key: str):
        self.salesperson = salesperson
        self.key = key

    def get_id(self) -> str:
        return self.key

    @property
    def viewer(self) -> Viewer:
        return Viewer(self.salesperson.id, self.salesperson.role)

    @property
    def is_manager(self) -> bool:
        return self.salesperson.role is Role.MANAGER


def init_app(login: LoginManager) -> None:
    login.login_view = "auth.sign_in"
    login.login_message = "Sign in to see your book."
    login.login_message_category = "info"

    @login.user_loader
    def load(key: str) -> SignedIn | None:
        person = accounts.signed_in(get_store(), key)
        return None if person is None else SignedIn(person, key)


def viewer() -> Viewer:
    """The signed-in salesperson as the service layer knows them."""
    return current_user.viewer


class SignInForm(FlaskForm):
    login = StringField("Email", validators=[DataRequired("Enter your email."), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


class ResetRequestForm(FlaskForm):
    login = EmailField("Email", validators=[DataRequired("Enter your email."), Length(max=320)])


class NewPasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[
            DataRequired("Choose a password."),
            Length(
                accounts.MIN_PASSWORD,
                accounts.MAX_PASSWORD,
                f"Use at least {accounts.MIN_PASSWORD} characters (and at most {accounts.MAX_PASSWORD}).",
            ),
        ],
    )
    confirm = PasswordField("Repeat it", validators=[EqualTo("password", "The two passwords differ.")])


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host): never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and "\\" not in target:
            return target
    return url_for("today.index")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = SignInForm()
    if form.validate_on_submit():
        store = get_store()
        person = accounts.sign_in(store, form.login.data or "", form.password.data or "")
        credentials = store.credentials_for(person.id) if person else None
        if person is not None and credentials is not None:
            session.clear()  # a fresh session at sign-in: nothing carried over from before
            login_user(SignedIn(person, accounts.session_key(credentials)))
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("That email and password do not match an account.")
    status = 400 if form.errors else 200
    return render_template("auth/sign_in.html", form=form), status


@bp.post("/sign-out")
@login_required
def sign_out() -> ResponseReturnValue:
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))


@bp.route("/reset", methods=["GET", "POST"])
def request_reset() -> ResponseReturnValue:
    form = ResetRequestForm()
    settings = mailer.MailSettings.from_config(current_app.config)
    if form.validate_on_submit():
        if not settings.configured:
            form.login.errors.append(
                "Email is not set up on this server, so no link can be sent. Ask your manager to run "
                "`flask --app app salespeople set-password` for you."
            )
        else:
            wanted = accounts.request_reset(get_store(), current_app.config["SECRET_KEY"], form.login.data or "")
            if wanted is not None:
                # On the configured address: a forged Host header must not send the link elsewhere.
                link = current_app.config["PUBLIC_URL"].rstrip("/") + url_for("auth.reset", token=wanted.token)
                minutes = int(current_app.config["PASSWORD_RESET_MINUTES"])
                text = render_template("auth/reset_email.txt", person=wanted.salesperson, link=link, minutes=minutes)
                message = mailer.compose(settings, wanted.email, "Reset your Netweave password", text)
                try:
                    mailer.send(settings, message)
                except mailer.MailFailed:
                    current_app.logger.exception("password reset email not sent")
                    form.login.errors.append("The email could not be sent just now. Please try again in a minute.")
                    return render_template("auth/reset_request.html", form=form, mail=settings.configured), 503
            # The same answer whether or not the address has an account.
            flash("If that address has an account, a reset link is on its way. It works once.", "info")
            return redirect(url_for("auth.sign_in"))
    status = 400 if form.errors else 200
    return render_template("auth/reset_request.html", form=form, mail=settings.configured), status


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> ResponseReturnValue:
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(
                get_store(), current_app.config["SECRET_KEY"], token, form.password.data or "",
                max_age_seconds=int(current_app.config["PASSWORD_RESET_MINUTES"]) * 60,
            )  # fmt: skip
        except Invalid as error:  # a bad link (field `token`: the form's own error) or a weak password
            show_problems(form, error)
        else:
            logout_user()
            session.clear()
            flash("Your password is changed. Sign in with it now.", "info")
            return redirect(url_for("auth.sign_in"))
    status = 400 if form.errors or form.form_errors else 200
    return render_template("auth/reset.html", form=form), status
