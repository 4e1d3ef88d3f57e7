"""Refreshing suggestions against the store: the worker's side of matching.

`Matcher.refresh_all()` embeds what changed, loads the whole book, ranks every active
business and publishes the lists as one generation. `Matcher.refresh_changes()` takes in
the pending changes (written by every change, in its own transaction), ranks only the rows
they reach and publishes those as an incremental generation; the lists then equal what a
full refresh would compute. The loaded book stays in memory between refreshes, which is
why only the worker process holds a Matcher.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from graph import GraphStore, GraphWriter, StoredBusiness
from graph.records import (
    EMBEDDING_FIELDS,
    BusinessStatus,
    Generation,
    GenerationKind,
    GenerationStatus,
    InferredCategory,
    PendingChange,
    Suggestion,
    SuggestionList,
)
from netweave.matching.book import Book, BusinessUpdate, Ranked
from netweave.matching.embedder import EmbeddingStats, TextEncoder, encode_memo, refresh_embeddings
from netweave.matching.reasons import distinguish, pair_reasons
from netweave.matching.rules import Rules
from netweave.matching.search import StoreVectorSearch
from netweave.matching.settings import MatchSettings

log = logging.getLogger(__name__)

SLICE = 2048  # rows ranked, explained and written at a time in a full refresh
FAR_SEARCHES = ("auto", "exhaustive", "index", "memory")

OnStart = Callable[[str, int], None]
OnProgress = Callable[[int], None]


def _quiet_start(stage: str, total: int) -> None:
    return None


def _quiet_progress(done: int) -> None:
    return None


@dataclass
class RefreshReport:
    kind: GenerationKind = GenerationKind.FULL
    embedding: EmbeddingStats = field(default_factory=EmbeddingStats)
    businesses: int = 0  # in the book
    changed: int = 0  # businesses whose pending changes were taken in
    refreshed: int = 0  # lists recomputed
    suggestions: int = 0
    inferred: int = 0
    generation: int | None = None
    seconds: float = 0.0
    lag_seconds: float | None = None  # from the oldest change taken in to its publication

    @property
    def embedded(self) -> int:
        """Texts whose vector was (re)written."""
        return self.embedding.texts

    def summary(self) -> str:
        if self.generation is None:
            return "nothing to refresh"
        what = "full refresh" if self.kind is GenerationKind.FULL else f"{self.changed} changed businesses taken in"
        return (
            f"{what}: {self.refreshed} businesses refreshed ({self.suggestions} suggestions), "
            f"{self.embedded} texts embedded, {self.inferred} kinds inferred; generation {self.generation}"
        )


class Matcher:
    def __init__(
        self,
        store: GraphStore,
        embedder: TextEncoder,
        rules: Rules,
        settings: MatchSettings | None = None,
        far_search: str = "auto",
        rules_path: Path | None = None,
    ):
        if far_search not in FAR_SEARCHES:
            raise ValueError(f"far search {far_search!r}: expected one of {', '.join(FAR_SEARCHES)}")
        self.store = store
        self.embedder = embedder
        self.rules = rules
        self.rules_path = rules_path  # where the rules were read from, to read again on request
        self.settings = settings or MatchSettings()
        self.far_search = far_search
        self._prototypes: np.ndarray | None = None
        self.book: Book | None = None  # what the last refresh loaded, kept for the next changes
        self.last_generation: int | None = None  # the generation this book's lists were published as
        # Called with each generation as it is published, while the lists it replaced still exist
        # (the worker tells webhooks what is new).
        self.on_published: Callable[[Generation], None] | None = None

    def reload_rules(self) -> bool:
        """Read the rules file again (before a full refresh asked for after editing it); True
        if the rules changed. An invalid file raises RulesError and the rules stay as they were."""
        if self.rules_path is None:
            return False
        rules = Rules.load(self.rules_path)
        if rules.digest == self.rules.digest:
            return False
        log.info("rules changed (%s -> %s): read again from %s", self.rules.digest, rules.digest, self.rules_path)
        self.rules, self._prototypes, self.book = rules, None, None
        return True

    @property
    def prototypes(self) -> np.ndarray:
        if self._prototypes is None:
            self._prototypes = encode_memo(self.embedder, [text for _, text in self.rules.prototypes])
        return self._prototypes

    def _uses_index(self) -> bool:
        return self.far_search == "index" or (self.far_search == "auto" and self.store.has_vector_index)

    def is_current(self, generation: Generation | None) -> bool:
        """Whether a published generation was made with this model, these rules and settings."""
        return generation is not None and (generation.model, generation.rules_digest, generation.settings_digest) == (
            self.embedder.name,
            self.rules.digest,
            self.settings.digest(),
        )

    def due(self, now: datetime) -> bool:
        """Whether a refresh has something to do: pending changes, or pauses that ended."""
        if self.store.pending_changes():
            return True
        return self.book is not None and bool(self.book.elig.expiring_between(self.book.now, now.timestamp()))

    # Loading
    def load_book(self, now: datetime, businesses: Sequence[StoredBusiness] | None = None) -> Book:
        """A fresh book from the store as it is now (`businesses`: the active ones, if just read)."""
        if self._uses_index():
            self.store.ensure_vector_indexes(self.embedder.dimensions)
            search = StoreVectorSearch(self.store.nearest)
        else:
            search = "memory" if self.far_search == "memory" else None
        book = Book(self.rules, self.settings, self.prototypes, search)
        book.load(
            self.store.all_businesses(BusinessStatus.ACTIVE) if businesses is None else businesses,
            self.store.embedding_batches,
            self.store.all_ties(),
            self.store.do_not_introduce_pairs(),
            self.store.list_feedback(),
            now.timestamp(),
        )
        return book

    def compute_lists(self, now: datetime | None = None) -> dict[str, SuggestionList]:
        """Every active business's list as a full refresh computes it now, written nowhere
        (what an incremental refresh is checked against)."""
        now = now or datetime.now(UTC)
        book = self.load_book(now)
        rows = book.active_rows()
        return {item.business_id: item for item in self._explain(book, book.rank(rows, book.far_candidates(rows)), now)}

    # Refreshing
    def prune(self, most: int = 20_000) -> int:
        """Delete up to `most` lists that a full refresh replaced (between jobs)."""
        return self.store.prune_lists(below_base=most)

    def refresh_all(
        self,
        *,
        now: datetime | None = None,
        job_id: str | None = None,
        on_start: OnStart = _quiet_start,
        on_progress: OnProgress = _quiet_progress,
    ) -> RefreshReport:
        """Recompute every list and publish them as one full generation."""
        try:
            return self._refresh_all(now or datetime.now(UTC), job_id, on_start, on_progress)
        except BaseException:
            self.book = None  # half-applied: the next refresh starts from the store again
            raise

    def _refresh_all(
        self, now: datetime, job_id: str | None, on_start: OnStart, on_progress: OnProgress
    ) -> RefreshReport:
        started = time.perf_counter()
        # Changes after this point stay pending and are taken in by the next refresh.
        taken_in = self.store.pending_changes()
        businesses = self.store.all_businesses(BusinessStatus.ACTIVE)
        report = RefreshReport(GenerationKind.FULL, businesses=len(businesses), changed=len(taken_in))
        on_start("embedding", len(businesses) * len(EMBEDDING_FIELDS))
        report.embedding = refresh_embeddings(self.store, self.embedder, businesses, self.rules, on_progress)
        book = self.load_book(now, businesses)
        inferred = self._inferred(book, book.active_rows())
        self.store.save_inferred_categories([b.id for b in businesses], inferred)
        report.inferred = len(inferred)

        generation = self._begin(GenerationKind.FULL, now, job_id)
        rows = book.active_rows()
        rows = rows[np.argsort(book.f.market[rows], kind="stable")]  # a market's rows share candidates
        on_start("candidates", len(rows))
        far = book.far_candidates(rows, on_progress)  # for all rows at once: each kind's candidates gathered once
        on_start("matching", len(rows))
        # The store writes one slice while the next is ranked; at most one write is in flight.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="netweave-store") as writer:
            writing: Future[None] | None = None
            for start in range(0, len(rows), SLICE):
                part = rows[start : start + SLICE]
                lists = self._explain(book, book.rank(part, far.take(slice(start, start + SLICE))), now)
                if writing is not None:
                    writing.result()
                writing = writer.submit(self._write_lists, generation.id, lists)
                report.refreshed += len(lists)
                report.suggestions += sum(len(item.suggestions) for item in lists)
                on_progress(len(part))
            if writing is not None:
                writing.result()
        published = self.store.write(lambda tx: tx.publish_generation(generation.id, now, taken_in))
        self.book = book
        self._published(published)
        # The lists it replaced are invisible now; the worker's sweep deletes them a batch at a time.
        return self._finish(report, published, taken_in, started)

    def refresh_changes(
        self,
        *,
        now: datetime | None = None,
        job_id: str | None = None,
        on_start: OnStart = _quiet_start,
        on_progress: OnProgress = _quiet_progress,
    ) -> RefreshReport:
        """Take in the pending changes and publish the lists they reach.

        Falls back to a full refresh when there is no book loaded yet, when another process
        published since (its changes are no longer pending, so this book would miss them),
        when the published lists were made with another model, rules or settings, or when so
        much changed that ranking everything is cheaper.
        """
        now = now or datetime.now(UTC)
        published = self.store.published_generation()
        if (
            self.book is None
            or published is None
            or published.id != self.last_generation
            or not self.is_current(published)
        ):
            return self.refresh_all(now=now, job_id=job_id, on_start=on_start, on_progress=on_progress)
        try:
            return self._refresh_changes(self.book, now, job_id, on_start, on_progress)
        except BaseException:
            self.book = None
            raise

    def _refresh_changes(
        self, book: Book, now: datetime, job_id: str | None, on_start: OnStart, on_progress: OnProgress
    ) -> RefreshReport:
        started = time.perf_counter()
        taken_in = self.store.pending_changes()
        size = len(book.active_rows())
        if len(taken_in) > max(50, size // 5):
            return self._refresh_all(now, job_id, on_start, on_progress)
        report = RefreshReport(GenerationKind.INCREMENTAL, businesses=size, changed=len(taken_in))
        ids = [change.business_id for change in taken_in]
        stored = self.store.get_businesses(ids) if ids else {}
        active = [b for b in stored.values() if b.archived_at is None]
        on_start("embedding", len(active) * len(EMBEDDING_FIELDS))
        report.embedding = refresh_embeddings(self.store, self.embedder, active, self.rules, on_progress)
        updates = self._updates(ids, stored, [b.id for b in active])
        rows, left = book.take_in(updates, now.timestamp())
        if not ids and not rows:
            return report  # nothing changed, nothing expired: no generation
        inferred = self._inferred(book, [book.f.index[b.id] for b in active])
        if active:
            self.store.save_inferred_categories([b.id for b in active], inferred)
        report.inferred = len(inferred)

        on_start("matching", len(rows))
        lists = self._explain(book, book.rank(rows), now)
        lists += [SuggestionList(book.f.ids[p], now) for p in sorted(left)]
        on_progress(len(rows))
        if len(lists) <= SLICE:  # a few lists: begun, written and published in one transaction
            self._prune_abandoned()

            def publish(tx: GraphWriter) -> Generation:
                generation = tx.begin_generation(GenerationKind.INCREMENTAL, job_id=job_id, now=now, **self._identity())
                tx.write_lists(generation.id, lists)
                return tx.publish_generation(generation.id, now, taken_in)

            published = self.store.write(publish)
        else:
            generation = self._begin(GenerationKind.INCREMENTAL, now, job_id)
            self._write_lists(generation.id, lists)
            published = self.store.write(lambda tx: tx.publish_generation(generation.id, now, taken_in))
        report.refreshed = len(rows)
        report.suggestions = sum(len(item.suggestions) for item in lists)
        self._published(published)
        self.store.prune_lists(superseded_by=published.id)
        return self._finish(report, published, taken_in, started)

    # Steps
    def _updates(
        self, ids: Sequence[str], stored: dict[str, StoredBusiness], active: Sequence[str]
    ) -> list[BusinessUpdate]:
        """What the store says now of the changed businesses: record, vectors and pair signals."""
        vectors: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
        for name in EMBEDDING_FIELDS:
            found, matrix = self.store.load_embeddings(name, active) if active else ([], None)
            for n, business_id in enumerate(found):
                vectors[business_id][name] = matrix[n]
        ties, blocked, feedback = defaultdict(list), defaultdict(set), defaultdict(list)
        if ids:
            for tie in self.store.all_ties(ids):
                for i in (tie.a, tie.b):
                    ties[i].append(tie)
            for pair in self.store.do_not_introduce_pairs(ids):
                for i in pair:
                    blocked[i].add(pair)
            for item in self.store.list_feedback(ids):
                for i in {item.a, item.b}:
                    feedback[i].append(item)
        return [
            BusinessUpdate(
                i, stored.get(i), vectors.get(i, {}), ties.get(i, []), blocked.get(i, set()), feedback.get(i, [])
            )
            for i in ids
        ]

    def _identity(self) -> dict[str, str]:
        """What a generation records of how its lists were made."""
        return {
            "model": self.embedder.name,
            "rules_digest": self.rules.digest,
            "settings_digest": self.settings.digest(),
        }

    def _prune_abandoned(self) -> None:
        """A crashed refresh's lists go before anything newer is published."""
        latest = self.store.list_generations(limit=1)
        if latest and latest[0].status is not GenerationStatus.PUBLISHED:
            self.store.prune_lists(abandoned=True)

    def _begin(self, kind: GenerationKind, now: datetime, job_id: str | None) -> Generation:
        generation = self.store.write(lambda tx: tx.begin_generation(kind, now=now, job_id=job_id, **self._identity()))
        self._prune_abandoned()
        return generation

    def _write_lists(self, generation: int, lists: Sequence[SuggestionList]) -> None:
        for start in range(0, len(lists), 1000):
            part = lists[start : start + 1000]
            self.store.write(lambda tx, part=part: tx.write_lists(generation, part))

    def _explain(self, book: Book, ranked: dict[int, Ranked], now: datetime) -> list[SuggestionList]:
        """Ranked positions -> lists of suggestions with reasons for both sides."""
        rows = sorted(ranked, key=lambda i: book.f.ids[i])
        pairs = [(i, j) for i in rows for j, _ in ranked[i]]
        reasons = iter(pair_reasons(book, pairs))
        ids = book.f.ids
        lists = []
        for i in rows:
            others = [j for j, _ in ranked[i]]
            explained = [next(reasons) for _ in others]
            mine = distinguish(book, i, others, [m for m, _ in explained])
            suggestions = [
                Suggestion(ids[i], ids[j], rank, score, my_reasons, their_reasons, now)
                for rank, ((j, score), my_reasons, (_, their_reasons)) in enumerate(
                    zip(ranked[i], mine, explained, strict=True), start=1
                )
            ]
            lists.append(SuggestionList(ids[i], now, tuple(suggestions)))
        return lists

    @staticmethod
    def _inferred(book: Book, positions: Sequence[int]) -> list[InferredCategory]:
        f = book.f
        return [
            InferredCategory(f.ids[p], f.guesses[p].kind, f.guesses[p].confidence)
            for p in positions
            if f.guesses[p].source == "inferred"
        ]

    def _published(self, generation: Generation) -> None:
        if self.on_published is not None:
            try:
                self.on_published(generation)
            except Exception:  # a listener's failure is its own, never the refresh's
                log.warning("after publishing generation %s: a listener failed", generation.id, exc_info=True)

    def _finish(
        self, report: RefreshReport, published: Generation, taken_in: Sequence[PendingChange], started: float
    ) -> RefreshReport:
        self.last_generation = report.generation = published.id
        report.seconds = time.perf_counter() - started
        if taken_in and published.published_at is not None:
            report.lag_seconds = (published.published_at - min(c.first_at for c in taken_in)).total_seconds()
        log.info("refresh published generation %s in %.3f s: %s", published.id, report.seconds, report.summary())
        return report
