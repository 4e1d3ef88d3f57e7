"""Sending email over SMTP (smtplib), with the settings from the environment.

One function, `send`, for every message the app sends. Plain SMTP, STARTTLS or implicit TLS;
a login when a username is set. With no SMTP host configured mail is off, and `send` raises
MailNotConfigured so that callers can say so instead of pretending it went.
"""

from __future__ import annotations

import email.policy
import re
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
    """The SMTP server could not be reached or refused the message (`reached`: it answered,
    and refused this one message; other messages may still go)."""

    def __init__(self, message: str, *, reached: bool = False):
        super().__init__(message)
        self.reached = reached


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


# Headers are not folded below SMTP's own limit: the default (78) would fold, and so encode, a
# header that is one long URL (List-Unsubscribe), which mail clients then cannot read.
_POLICY = email.policy.default.clone(max_line_length=998)
_UNSAFE_IN_HEADERS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def header_value(text: str) -> str:
    """A header value that cannot start another header: line breaks and other control
    characters (a business name pasted with a newline, or crafted) become one space."""
    return " ".join(_UNSAFE_IN_HEADERS.sub(" ", text).split())


def compose(
    settings: MailSettings,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["From"] = header_value(settings.sender)
    message["To"] = header_value(to)
    message["Subject"] = header_value(subject)
    message["Message-ID"] = message_id or make_msgid(domain=sender_domain(settings))
    for name, value in (headers or {}).items():
        message[name] = header_value(value)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def sender_domain(settings: MailSettings) -> str | None:
    return settings.sender.rpartition("@")[2].strip("> ") or None


def _connect(settings: MailSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if settings.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, settings.password)
    except BaseException:
        client.close()
        raise
    return client


class Outbox:
    """One SMTP connection for many messages (a digest run), opened on the first and opened
    again after the server drops it. Use as a context manager."""

    def __init__(self, settings: MailSettings):
        if not settings.configured:
            raise MailNotConfigured("email is not set up here (NETWEAVE_SMTP_HOST is empty)")
        self.settings = settings
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()

    def send(self, message: EmailMessage) -> None:
        """Deliver one message; MailFailed (with the server's reason) if it could not."""
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            if self._client is None:
                self._client = _connect(self.settings)
            self._client.send_message(message)
        except (
            smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError,
            smtplib.SMTPNotSupportedError,  # e.g. an address the server cannot take (no SMTPUTF8)
        ) as error:  # fmt: skip
            # The server answered and refused this message; the connection is still good.
            raise MailFailed(f"{where} refused the message to {message['To']}: {error}", reached=True) from error
        except (OSError, smtplib.SMTPException) as error:
            if self._client is not None:
                self._client.close()
                self._client = None
            raise MailFailed(f"could not send to {message['To']} through {where}: {error}", reached=False) from error


def send(settings: MailSettings, message: EmailMessage) -> None:
    """Deliver one message on a connection of its own; MailNotConfigured or MailFailed."""
    with Outbox(settings) as outbox:
        outbox.send(message)
