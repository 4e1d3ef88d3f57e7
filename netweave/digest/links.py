"""The weekly email's one-click links: signed (itsdangerous), with an expiry, each acting once.

A link's token carries what it does (introduce, dismiss or snooze a pair; rate an
introduction), for whom, and until when. Tokens hold no timestamp of their making, so the same
digest always has the same links: a preview shows exactly the message that is sent. A link's
`once` key is shared by every action on the same line of the same digest, so after one of
them is used the others on that line are refused too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

_ACT_SALT = "netweave.email-link"
_UNSUBSCRIBE_SALT = "netweave.email-unsubscribe"


class Action(StrEnum):
    INTRODUCE = "introduce"
    DISMISS = "dismiss"  # not a fit
    SNOOZE = "snooze"  # not now
    RATE = "rate"  # how an introduction went, 1..5


class LinkRefused(ValueError):
    """The link cannot be used: why, in words for its reader."""


@dataclass(frozen=True)
class Link:
    action: Action
    salesperson_id: str
    week: str
    expires_at: datetime
    a_id: str = ""
    b_id: str = ""
    introduction_id: str = ""
    rating: int = 0

    @property
    def once(self) -> str:
        """The key that makes the link act once (and its line's other links with it)."""
        line = f"rate|{self.introduction_id}" if self.action is Action.RATE else f"pair|{self.a_id}|{self.b_id}"
        return f"{self.week}|{self.salesperson_id}|{line}"


class Signer:
    def __init__(self, secret_key: str):
        self._act = URLSafeSerializer(secret_key, salt=_ACT_SALT)
        self._unsubscribe = URLSafeSerializer(secret_key, salt=_UNSUBSCRIBE_SALT)

    def sign(self, link: Link) -> str:
        claims: dict[str, Any] = {
            "a": link.action.value, "s": link.salesperson_id, "w": link.week,
            "e": int(link.expires_at.timestamp()),
        }  # fmt: skip
        if link.action is Action.RATE:
            claims |= {"i": link.introduction_id, "r": link.rating}
        else:
            claims |= {"x": link.a_id, "y": link.b_id}
        return self._act.dumps(claims)

    def read(self, token: str, now: datetime | None = None) -> Link:
        """The link a token stands for; LinkRefused if it was not made here or has expired."""
        try:
            claims = self._act.loads(token)
            link = Link(
                action=Action(claims["a"]),
                salesperson_id=str(claims["s"]),
                week=str(claims["w"]),
                expires_at=datetime.fromtimestamp(int(claims["e"]), UTC),
                a_id=str(claims.get("x", "")),
                b_id=str(claims.get("y", "")),
                introduction_id=str(claims.get("i", "")),
                rating=int(claims.get("r", 0)),
            )
        except (BadSignature, KeyError, TypeError, ValueError) as error:
            raise LinkRefused(
                "this link is not one of ours, or it was cut short: open it from the email again"
            ) from error
        if (now or datetime.now(UTC)) >= link.expires_at:
            raise LinkRefused(f"this link expired on {link.expires_at:%b} {link.expires_at.day}")
        return link

    def sign_unsubscribe(self, salesperson_id: str) -> str:
        return self._unsubscribe.dumps({"s": salesperson_id})

    def read_unsubscribe(self, token: str) -> str:
        """The salesperson an unsubscribe token is for (it does not expire: stopping mail must
        always work)."""
        try:
            return str(self._unsubscribe.loads(token)["s"])
        except (BadSignature, KeyError, TypeError) as error:
            raise LinkRefused("this unsubscribe link is not one of ours, or it was cut short") from error
