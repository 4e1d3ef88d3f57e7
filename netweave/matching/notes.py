"""What an account note says of the business itself.

CRM descriptions mix what a business does with the account's bookkeeping: "Florist.
Customer since 2019. Net 30. Met at chamber mixer." The bookkeeping says nothing of what
the business offers, yet it would pull its embedding toward whatever it names (a chamber
of commerce, a billing service) and read oddly in a reason. It is left out of the texts
matching embeds and quotes; the stored description keeps it.
"""

from __future__ import annotations

import re

# Notes about the account, not the business, as CRMs hold them: tenure, billing and
# contract terms, how and where they were met, contact preferences, marketing status, who
# the contact is, and follow-up chores. Matched against the start of a piece, and narrow
# enough that a business's own facts ("Bills insurance directly", "Imported from Italy",
# "Credit card processing for restaurants") are never taken for bookkeeping.
_BOOKKEEPING = re.compile(
    r"""^(?:
        (?:customer|client|member|account)\s+since\b
      | net\s*\d+\b | auto[-\s]?renew | renew(?:s|al|ed)?\s+(?:in|on|due|date|annually|monthly|yearly|every|\d)
      | pays\s+(?:by|on|in|via|late|net|upfront|annually|monthly)\b | paid\s+(?:by|in|via|up|annually|monthly)\b
      | deposit-heavy | late\s+payer | (?:ach|check|cash)(?:\s*/\s*(?:ach|check|cash))*\s+only\b
      | po\s+(?:required|needed|number)\b | w-?9\s+on\s+file | credit\s+card\s+on\s+file
      | invoice[sd]?\s+(?:monthly|quarterly|annually|net|via|by|sent|paid|overdue)\b
      | (?:upsold|downgraded|upgraded)\s+to\b | churn(?:ed|\s+risk)\b | (?:premium|basic|pro)\s+tier\b
      | met\s+(?:at|through|via|during)\b | referred\s+by\b | lead\s+from\b
      | inbound\s+(?:web\s+)?(?:lead|call|inquiry)\b | imported\s+from\b.*\b(?:list|csv|spreadsheet|file|crm|import)\b
      | (?:owner\s+)?prefers\s+(?:email|e-mail|text|texts|texting|calls?|phone)\b | (?:best\s+)?reached\s+by\b
      | unsubscribed\b | opted\s+out\b | do\s+not\s+(?:call|email|contact)\b | bounced\s+email
      | (?:contact|owner|main\s+contact|poc|decision\s+maker)\s*:
      | follow(?:ed)?[\s-]?up\b | left\s+(?:a\s+)?(?:voicemail|vm|message)\b
      | (?:called|emailed|texted)\b(?!\s+(?:the|a|an)\b)
      | (?:insurance\s+)?cert(?:ificate)?\s+(?:of\s+insurance\s+)?on\s+file\b | coi\s+on\s+file\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_PIECES = re.compile(r"[.;!?\n]|\s[-–—]\s")


def pieces(description: str) -> list[str]:
    """A description cut into its sentences and note fragments ("Brewery. Taproom - Net 30")."""
    return [piece for piece in (p.strip(" ,:()") for p in _PIECES.split(description)) if piece]


def is_bookkeeping(piece: str) -> bool:
    return bool(_BOOKKEEPING.match(piece.strip()))


def about_business(description: str) -> str:
    """The description without the account's bookkeeping, or "" if nothing else is left.

    Kept as written (punctuation and all) when nothing in it is bookkeeping."""
    every = pieces(description)
    kept = [piece for piece in every if not is_bookkeeping(piece)]
    if len(kept) == len(every):
        return description.strip()
    return ". ".join(kept) + ("." if kept else "")


def fragments(description: str, longest: int = 40) -> list[str]:
    """The short pieces of a description that may name a kind outright, as account notes
    often do ("Brewery. Taproom. Net 30." or "DJ - owner prefers text")."""
    return [piece for piece in pieces(description) if len(piece) <= longest and not is_bookkeeping(piece)]
