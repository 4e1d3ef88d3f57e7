"""Every business's ranked suggestions as plain JSON-ready data (for `match export`)."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from graph import GraphStore


def export_suggestions(store: GraphStore) -> list[dict[str, Any]]:
    """One entry per business with suggestions, ids as the CRM knows them, best first."""
    suggestions = store.all_suggestions()
    named = store.get_businesses(sorted({i for s in suggestions for i in (s.business_id, s.other_id)}))
    names = {business_id: business.record.name for business_id, business in named.items()}
    entries = []
    for business_id, group in groupby(suggestions, key=lambda s: s.business_id):
        entries.append(
            {
                "id": business_id,
                "name": names.get(business_id),
                "suggestions": [
                    {
                        "rank": s.rank,
                        "id": s.other_id,
                        "name": names.get(s.other_id),
                        "score": s.score,
                        "why_for_business": list(s.reasons),
                        "why_for_other": list(s.other_reasons),
                        "computed_at": s.computed_at.isoformat(),
                    }
                    for s in group
                ],
            }
        )
    return entries
