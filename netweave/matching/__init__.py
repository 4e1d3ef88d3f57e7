"""The matching engine: ranked, explained introductions between customers.

`Matcher.refresh()` brings embeddings up to date (only changed texts are embedded),
infers missing kinds of business, scores candidate pairs market by market and stores
each business's top suggestions with reasons for both sides. `refresh(business_ids=...)`
does the same incrementally for a few businesses and the lists they enter or leave.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from graph import GraphStore, StoredBusiness, Tie, TieKind
from graph.records import EMBEDDING_FIELDS, DismissReason, Feedback, FeedbackKind, Suggestion
from netweave.matching.embedder import Embedder, EmbeddingStats, refresh_embeddings
from netweave.matching.engine import MatchData, MatchSettings
from netweave.matching.reasons import pair_reasons
from netweave.matching.rules import Rules

__all__ = ["Embedder", "MatchSettings", "Matcher", "RefreshReport", "Rules"]


@dataclass
class RefreshReport:
    embedding: EmbeddingStats = field(default_factory=EmbeddingStats)
    businesses: int = 0
    refreshed: int = 0
    suggestions: int = 0
    inferred: int = 0

    @property
    def embedded(self) -> int:
        """Texts whose vector was (re)written."""
        return self.embedding.texts

    def summary(self) -> str:
        return (
            f"{self.refreshed} businesses refreshed ({self.suggestions} suggestions), "
            f"{self.embedded} texts embedded, {self.inferred} kinds inferred"
        )


class Matcher:
    def __init__(self, store: GraphStore, embedder: Embedder, rules: Rules, settings: MatchSettings | None = None):
        self.store = store
        self.embedder = embedder
        self.rules = rules
        self.settings = settings or MatchSettings()
        self._prototypes: np.ndarray | None = None
        self._data: MatchData | None = None  # what the last refresh loaded, for incremental ones

    @property
    def prototypes(self) -> np.ndarray:
        if self._prototypes is None:
            self._prototypes = self.embedder.encode(list(self.rules.prototypes.values()))
        return self._prototypes

    def all_businesses(self) -> list[StoredBusiness]:
        return self.store.list_businesses(limit=max(self.store.count_businesses(), 1))

    def load(self, businesses: Sequence[StoredBusiness], now: datetime) -> MatchData:
        neighbours = None
        if self.store.has_vector_index:  # far candidates come from the database's vector indexes
            self.store.ensure_vector_indexes(self.embedder.dimensions)
            neighbours = self.store.nearest
        return MatchData(
            businesses,
            self.store.load_embeddings,
            self.rules,
            self.prototypes,
            self.store.all_ties(),
            self.store.do_not_introduce_pairs(),
            self.store.list_feedback(),
            self.settings,
            now,
            neighbours,
        )

    def refresh(
        self,
        *,
        business_ids: Sequence[str] | None = None,
        salesperson_id: str | None = None,
        now: datetime | None = None,
        on_start: Callable[[str, int], None] = lambda stage, total: None,
        on_progress: Callable[[int], None] = lambda n: None,
    ) -> RefreshReport:
        """Recompute suggestions for everyone, one salesperson's book, or a few businesses.

        For a few businesses the matcher reuses what it loaded last time and takes in only
        the edited businesses (their texts, kinds and the graph's ties and feedback), so a
        single edit costs milliseconds rather than a reload of the whole book.
        """
        now = now or datetime.now(UTC)
        if business_ids is not None and self._data is not None:
            return self._refresh_few(list(business_ids), now, on_start, on_progress)
        businesses = self.all_businesses()
        wanted = None if business_ids is None else set(business_ids)
        changed = businesses if wanted is None else [b for b in businesses if b.id in wanted]
        report = RefreshReport(self._embed(changed, on_start, on_progress), businesses=len(businesses))
        data = self._data = self.load(businesses, now)
        inferred = data.inferred_categories()
        self.store.save_inferred_categories([b.id for b in businesses], inferred)
        report.inferred = len(inferred)

        if business_ids is not None:
            targets = self._affected(data, [data.index[i] for i in business_ids if i in data.index])
        elif salesperson_id is not None:
            targets = [i for i, b in enumerate(businesses) if b.record.salesperson_id == salesperson_id]
        else:
            targets = list(range(len(businesses)))
        return self._store_ranking(data, targets, now, report, on_start, on_progress)

    def take_feedback(self, feedback: Feedback) -> RefreshReport:
        """Record feedback on a pair and refresh both businesses' suggestions.

        A dismissal because the two already know each other also records that tie, so the
        graph (and anything else that reads it) knows it too. An unknown business raises
        UnknownBusinessError and records nothing.
        """
        if feedback.kind is FeedbackKind.DISMISSED and feedback.reason == DismissReason.ALREADY_KNOW:
            # The tie first: adding it twice changes nothing, so a retry after a failure is safe.
            self.store.add_ties([Tie(feedback.a, feedback.b, TieKind.KNOWS)], feedback.at)
        self.store.record_feedback(feedback)
        return self.refresh(business_ids=[feedback.a, feedback.b], now=feedback.at)

    def _refresh_few(
        self,
        business_ids: list[str],
        now: datetime,
        on_start: Callable[[str, int], None],
        on_progress: Callable[[int], None],
    ) -> RefreshReport:
        data = self._data
        assert data is not None
        changed = [b for i in dict.fromkeys(business_ids) if (b := self.store.get_business(i)) is not None]
        report = RefreshReport(self._embed(changed, on_start, on_progress), businesses=len(data.businesses))
        ids = [b.id for b in changed]
        vectors = {name: self.store.load_embeddings(name, ids) for name in EMBEDDING_FIELDS}
        if not data.patch(changed, vectors):
            self._data = None  # new businesses or markets: load afresh
            return self.refresh(business_ids=business_ids, now=now, on_start=on_start, on_progress=on_progress)
        data.set_graph_signals(
            self.store.all_ties(), self.store.do_not_introduce_pairs(), self.store.list_feedback(), now
        )
        inferred = data.inferred_categories([data.index[i] for i in ids])
        self.store.save_inferred_categories(ids, inferred)
        report.inferred = len(inferred)
        targets = self._affected(data, [data.index[i] for i in ids])
        return self._store_ranking(data, targets, now, report, on_start, on_progress)

    def _embed(
        self,
        changed: Sequence[StoredBusiness],
        on_start: Callable[[str, int], None],
        on_progress: Callable[[int], None],
    ) -> EmbeddingStats:
        on_start("embedding", len(changed) * len(EMBEDDING_FIELDS))
        return refresh_embeddings(self.store, self.embedder, changed, on_progress)

    def _store_ranking(
        self,
        data: MatchData,
        targets: list[int],
        now: datetime,
        report: RefreshReport,
        on_start: Callable[[str, int], None],
        on_progress: Callable[[int], None],
    ) -> RefreshReport:
        """Rank, explain and store, a slice at a time so memory stays flat as the book grows."""
        on_start("candidates", len(targets))
        far = far_candidates(data, targets, on_progress)
        on_start("matching", len(targets))
        report.refreshed = len(targets)
        # The store writes one slice while the next is ranked; at most one write is in flight.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="netweave-store") as writer:
            writing: Future[None] | None = None
            for block in data.blocks(targets):
                for start in range(0, len(block), 2048):
                    part = block[start : start + 2048]
                    suggestions = self._rank(data, part, far, now, on_progress)
                    if writing is not None:
                        writing.result()
                    ids = [data.businesses[i].id for i in part]
                    writing = writer.submit(self.store.replace_suggestions, ids, suggestions)
                    report.suggestions += len(suggestions)
            if writing is not None:
                writing.result()
        return report

    def _affected(self, data: MatchData, changed: list[int]) -> list[int]:
        """The changed businesses plus every business whose list they may enter or leave."""
        affected = set(changed)
        for ranked in data_top(data, changed).values():
            affected.update(j for j, _ in ranked)
        holders = self.store.businesses_suggesting([data.businesses[i].id for i in changed])
        affected.update(data.index[b] for b in holders if b in data.index)
        return sorted(affected)

    def _rank(
        self,
        data: MatchData,
        targets: list[int],
        far: dict[int, np.ndarray],
        now: datetime,
        on_progress: Callable[[int], None],
    ) -> list[Suggestion]:
        ranked = [(i, rank, j, score) for i, top in data_top(data, targets, far, on_progress).items()
                  for rank, (j, score) in enumerate(top, start=1)]  # fmt: skip
        reasons = pair_reasons(data, [(i, j) for i, _, j, _ in ranked])
        business = data.businesses
        return [
            Suggestion(business[i].id, business[j].id, rank, score, mine, theirs, now)
            for (i, rank, j, score), (mine, theirs) in zip(ranked, reasons, strict=True)
        ]


def far_candidates(
    data: MatchData, targets: Sequence[int], on_progress: Callable[[int], None] = lambda n: None
) -> dict[int, np.ndarray]:
    """Each target's far candidates, computed for all at once (a kind at a time)."""
    targets = sorted(set(targets))
    found = data.far_candidates(np.asarray(targets, dtype=np.int64), on_progress)
    return dict(zip(targets, found, strict=True))


def data_top(
    data: MatchData,
    targets: Sequence[int],
    far: dict[int, np.ndarray] | None = None,
    on_progress: Callable[[int], None] = lambda n: None,
) -> dict[int, list[tuple[int, float]]]:
    """Top pairs for `targets`, market by market (`far` as from `far_candidates`, or computed)."""
    if far is None:
        far = far_candidates(data, targets)
    result: dict[int, list[tuple[int, float]]] = {}
    for rows in data.blocks(targets):
        for start in range(0, len(rows), 512):
            part = rows[start : start + 512]
            result.update(data.top_pairs(part, np.stack([far[i] for i in part])))
            on_progress(len(part))
    return result
