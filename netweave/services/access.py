"""Who is asking, and what they may see.

A salesperson sees their own book: suggestions for their businesses, each of which
involves at least one business of theirs. A manager sees every book. The system (the CLI,
jobs) acts with a manager's reach. A pair across two books names both owners; the other
side's contact details stay hidden until its owner agrees (see `matches.share_contact`).
"""

from __future__ import annotations

from dataclasses import dataclass

from graph import GraphStore, Role, StoredBusiness


class NotAllowed(PermissionError):
    """The viewer may not see or change this."""


class NotFound(LookupError):
    """No such business, salesperson or job (or not one the viewer may know of)."""


class Conflict(ValueError):
    """It exists already (create), or changed since the caller read it."""


class Invalid(ValueError):
    """Input that does not validate: each problem names its field ('' for the whole) and why."""

    def __init__(self, problems: tuple[tuple[str, str], ...]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" if field else message for field, message in problems))


@dataclass(frozen=True)
class Viewer:
    salesperson_id: str | None  # None: the system itself (or an integration), every book
    role: Role = Role.SALESPERSON
    acting_as: str | None = None  # who, when not a salesperson ("integration:HubSpot sync")

    def __post_init__(self) -> None:
        if self.salesperson_id is None:
            object.__setattr__(self, "role", Role.MANAGER)

    @classmethod
    def system(cls) -> Viewer:
        return cls(None, Role.MANAGER)

    @property
    def label(self) -> str:
        return self.salesperson_id or self.acting_as or "system"

    @property
    def sees_every_book(self) -> bool:
        return self.role is Role.MANAGER

    def manages(self, business: StoredBusiness) -> bool:
        return self.sees_every_book or business.record.salesperson_id == self.salesperson_id

    def require_book(self, salesperson_id: str) -> None:
        if not self.sees_every_book and salesperson_id != self.salesperson_id:
            raise NotAllowed(f"{self.label} may not see the book of {salesperson_id}")


def viewer_for(store: GraphStore, salesperson_id: str) -> Viewer:
    """The viewer a salesperson acts as (their stored role)."""
    person = store.get_salesperson(salesperson_id.strip().lower())
    if person is None:
        raise NotFound(f"no salesperson {salesperson_id!r}")
    return Viewer(person.id, person.role)


def business_for(store: GraphStore, viewer: Viewer, business_id: str, *, active: bool = True) -> StoredBusiness:
    """The business, if it exists (and is active, unless `active` is False) and the viewer manages it."""
    return check_business(viewer, store.get_business(business_id), business_id, active=active)


def check_business(
    viewer: Viewer, business: StoredBusiness | None, business_id: str, *, active: bool = True
) -> StoredBusiness:
    """`business_for` on a business already read (None: there is none with that id)."""
    if business is None:
        raise NotFound(f"no customer with id {business_id!r}")
    if active and business.archived_at is not None:
        raise NotFound(f"customer {business_id!r} is archived (restore it first)")
    if not viewer.manages(business):
        raise NotAllowed(f"{viewer.label} does not manage customer {business_id!r}")
    return business
