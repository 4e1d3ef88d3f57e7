"""Web layer: the salesperson web app (sign-in, Today, accounts) and the JSON API (`api`,
under /api/v1), with what they share: sessions, CSRF and security headers."""

from __future__ import annotations

from flask import Flask, Response, request
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

# No inline script anywhere (the pages load their scripts from /static); styles inline only as
# attributes the front-end libraries set at run time.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def register_blueprints(app: Flask) -> None:
    from netweave.web import (
        api,
        auth,
        customers,
        dashboard,
        email,
        errors,
        health,
        introductions,
        settings,
        shedding,
        today,
    )

    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = str(app.config.get("SECURE_COOKIES", "")).lower() in ("1", "true", "yes")
    app.config["REMEMBER_COOKIE_SECURE"] = app.config["SESSION_COOKIE_SECURE"]
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid for the session's life

    login = LoginManager(app)
    auth.init_app(login)
    csrf = CSRFProtect(app)

    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(today.bp)
    app.register_blueprint(customers.bp)
    app.register_blueprint(introductions.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(email.bp)
    csrf.exempt(email.unsubscribe)  # RFC 8058: mail clients POST it with no session; the signed link is the key
    api.init_app(app)
    csrf.exempt(api.bp)  # bearer tokens, no cookies: nothing for a forged form to ride on

    # Guessing passwords: a few tries a minute per address (the API's limiter, its own count).
    limiter = app.extensions["netweave.api_limiter"]
    for endpoint in ("auth.sign_in", "auth.request_reset"):
        app.view_functions[endpoint] = limiter.limit(
            lambda: app.config["SIGN_IN_RATE_LIMIT"], key_func=get_remote_address, methods=["POST"], scope=endpoint
        )(app.view_functions[endpoint])
    # And per account, from any address: after a few wrong passwords the account is locked for
    # a while (only refused sign-ins count; a reset by email still works).
    app.view_functions["auth.sign_in"] = limiter.limit(
        lambda: app.config["SIGN_IN_LOCKOUT"], key_func=_account_signing_in, methods=["POST"],
        scope="auth.sign_in.account", deduct_when=lambda response: response.status_code == 400,
    )(app.view_functions["auth.sign_in"])  # fmt: skip

    errors.init_app(app)
    shedding.init_app(app)
    app.after_request(_security_headers)


def _account_signing_in() -> str:
    """The account a sign-in is for, however it was typed (id or email, any case), and its
    password's age: a new password (a reset by email) starts a fresh count."""
    from netweave.store import get_store

    login = request.form.get("login", "").strip().lower()
    credentials = get_store().credentials_for(login) if login else None
    if credentials is None:
        return "login:" + login
    changed = credentials.changed_at.isoformat() if credentials.changed_at else ""
    return f"account:{credentials.salesperson.id}:{changed}"


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response
