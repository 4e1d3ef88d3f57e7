"""Sending email over SMTP (smtplib), with the settings from the environment.

One function, `send`, for every message the app sends. Plain SMTP, STARTTLS or implicit TLS;
a login when a username is set. With no SMTP host configured mail is off, and `send` raises
MailNotConfigured so that callers can say so instead of pretending it went.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Literal

Security = Literal["none", "starttls", "tls"]


class MailNotConfigured(RuntimeError):
    """No SMTP host is set (NETWEAVE_SMTP_HOST)."""


class MailFailed(RuntimeError):
    """The SMTP server could not be reached or refused the message."""


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    security: Security
    username: str
    password: str
    sender: str  # From: "Netweave <netweave@example.com>"
    timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MailSettings:
        security = str(config["SMTP_SECURITY"]).lower()
        if security not in ("none", "starttls", "tls"):
            raise ValueError(f"NETWEAVE_SMTP_SECURITY must be none, starttls or tls, not {security!r}")
        return cls(
            host=str(config["SMTP_HOST"]),
            port=int(config["SMTP_PORT"]),
            security=security,  # type: ignore[arg-type]
            username=str(config["SMTP_USERNAME"]),
            password=str(config["SMTP_PASSWORD"]),
            sender=str(config["MAIL_FROM"]),
        )

    @property
    def configured(self) -> bool:
        return bool(self.host)


def compose(settings: MailSettings, to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2].strip("> ") or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def send(settings: MailSettings, message: EmailMessage) -> None:
    """Deliver one message; MailNotConfigured or MailFailed (with the server's reason)."""
    if not settings.configured:
        raise MailNotConfigured("email is not set up here (NETWEAVE_SMTP_HOST is empty)")
    context = ssl.create_default_context()
    try:
        if settings.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            if settings.security == "starttls":
                client.starttls(context=context)
            if settings.username:
                client.login(settings.username, settings.password)
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        where = f"{settings.host}:{settings.port}"
        raise MailFailed(f"could not send to {message['To']} through {where}: {error}") from error
