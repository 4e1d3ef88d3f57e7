"""Refreshing suggestions against the store: the worker's side of matching.

`Matcher.refresh_all()` embeds what changed, loads the whole book, ranks every active
business and publishes the lists as one generation. `Matcher.refresh_changes()` takes in
the pending changes (written by every change, in its own transaction), ranks only the rows
they reach and publishes those as an incremental generation; the lists then equal what a
full refresh would compute. The loaded book stays in memory between refreshes, which is
why only the worker process holds a Matcher.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    PartStatus,
    PendingChange,
    RefreshPart,
    Suggestion,
    SuggestionList,
)
from netweave.matching.book import Book, BusinessUpdate, Ranked
from netweave.matching.embedder import EmbeddingStats, TextEncoder, encode_memo, refresh_embeddings
from netweave.matching.parts import PART_LEASE_S, PartState, Snapshot, ids_digest, pending_token, split_by_market
from netweave.matching.reasons import distinguish, pair_reasons
from netweave.matching.rules import Rules
from netweave.matching.search import FarResult, StoreVectorSearch
from netweave.matching.settings import MatchSettings

log = logging.getLogger(__name__)

SLICE = 2048  # rows ranked, explained and written at a time in a full refresh
HELP_WAIT_S = 1800.0  # how long a helper waits for the parts of a refresh whose worker is still loading
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


def _by_market(book: Book) -> np.ndarray:
    """The active rows, a market's together (they share their local candidates)."""
    rows = book.active_rows()
    return rows[np.argsort(book.f.market[rows], kind="stable")]


PRUNE_STEP = 1_000  # replaced lists deleted a transaction: small commits, never a long one


class PartLost(RuntimeError):
    """A part of a split refresh was taken over by another worker (this one was too slow)."""


class Matcher:
    def __init__(
        self,
        store: GraphStore,
        embedder: TextEncoder,
        rules: Rules,
        settings: MatchSettings | None = None,
        far_search: str = "auto",
        rules_path: Path | None = None,
        parts: int = 1,
        split_min_rows: int = 2000,
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
        # A full refresh of at least `split_min_rows` rows is split by market into `parts`
        # (see parts.py); `request_help(generation, helpers)` asks the queue for helpers.
        self.parts = parts
        self.split_min_rows = split_min_rows
        self.request_help: Callable[[int, int], None] | None = None
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

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
    def prune(self, most: int = 5_000) -> int:
        """Delete up to `most` lists that a full refresh replaced (the worker's sweep, once a
        minute), PRUNE_STEP a transaction, pausing after each as long as it took: housekeeping
        takes at most half the store's time, so the writes users wait for are not slowed by it
        (a bulk upsert on Neo4j took 4x as long beside unpaced deletes of 5,000 lists a
        transaction). Replaced lists are invisible to readers; they only wait for the disk."""
        removed = 0
        while removed < most:
            step = min(PRUNE_STEP, most - removed)
            began = time.monotonic()
            deleted = self.store.prune_lists(below_base=step)
            removed += deleted
            if deleted < step:
                break
            time.sleep(time.monotonic() - began)
        return removed

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
        generation = self._begin(GenerationKind.FULL, now, job_id)
        if self.parts > 1 and len(businesses) >= self.split_min_rows:
            self._call_for_help(generation.id)  # helpers load their books while this one loads its own
        book = self.load_book(now, businesses)
        inferred = self._inferred(book, book.active_rows())
        self.store.save_inferred_categories([b.id for b in businesses], inferred)
        report.inferred = len(inferred)

        rows = _by_market(book)
        snapshot = self._snapshot(book, taken_in, now)
        split = split_by_market(rows, book.f.market[rows], self.parts) if snapshot else [rows]
        if len(split) > 1:
            assert snapshot is not None
            self._rank_split(book, generation.id, split, snapshot, report, on_start, on_progress)
        else:
            on_start("candidates", len(rows))
            far = book.far_candidates(rows, on_progress)  # for all rows at once: each kind's candidates gathered once
            on_start("matching", len(rows))
            lists, suggestions = self._rank_rows(book, generation.id, rows, far, now, on_progress)
            report.refreshed += lists
            report.suggestions += suggestions
        published = self.store.write(lambda tx: tx.publish_generation(generation.id, now, taken_in))
        if len(split) > 1:
            self.store.write(lambda tx: tx.delete_refresh_parts(generation.id))
        self.book = book
        self._published(published)
        # The lists it replaced are invisible now; the worker's sweep deletes them a batch at a time.
        return self._finish(report, published, taken_in, started)

    def _rank_rows(
        self,
        book: Book,
        generation: int,
        rows: np.ndarray,
        far: FarResult,
        now: datetime,
        on_progress: OnProgress,
        part: int | None = None,
    ) -> tuple[int, int]:
        """Rank, explain and write `rows` (with their far candidates) a slice at a time; the
        store writes one slice while the next is ranked (renewing the lease of `part`, when one
        is given, in each transaction). Returns (lists, suggestions) written."""
        lists_written = suggestions = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="netweave-store") as writer:
            writing: Future[None] | None = None
            for start in range(0, len(rows), SLICE):
                ranked = rows[start : start + SLICE]
                lists = self._explain(book, book.rank(ranked, far.take(slice(start, start + SLICE))), now)
                if writing is not None:
                    writing.result()
                writing = writer.submit(self._write_lists, generation, lists, part)
                lists_written += len(lists)
                suggestions += sum(len(item.suggestions) for item in lists)
                on_progress(len(ranked))
            if writing is not None:
                writing.result()
        return lists_written, suggestions

    # A full refresh split by market (parts.py)
    def _snapshot(self, book: Book, taken_in: Sequence[PendingChange], now: datetime) -> Snapshot | None:
        """What helpers must find to rank this book, or None when it is not to be split: too
        few rows or parts, or a change landed while the book was read (its rows are then not
        those of any one moment another worker could load)."""
        if self.parts < 2 or len(book.active_rows()) < self.split_min_rows:
            return None
        token = pending_token(self.store.pending_changes())
        if token != pending_token(taken_in):
            return None
        return Snapshot(token, ids_digest(book.f.ids[: book.f.size]), now, self._split_identity(book))

    def _split_identity(self, book: Book) -> dict[str, str]:
        """What every worker ranking a part must share: model, rules and settings, the kinds'
        prototype vectors as this process encoded them (a device or batch size could change a
        bit), and where far candidates come from."""
        prototypes = hashlib.blake2b(book.prototypes.tobytes(), digest_size=16).hexdigest()
        far = "index" if self._uses_index() else self.far_search
        return {**self._identity(), "prototypes": prototypes, "far_search": far}

    def _rank_split(
        self,
        book: Book,
        generation: int,
        split: list[np.ndarray],
        snapshot: Snapshot,
        report: RefreshReport,
        on_start: OnStart,
        on_progress: OnProgress,
    ) -> None:
        """Rank the parts this worker can claim while helpers rank others; then wait for theirs
        (taking over a part whose helper stopped) and install what their rankings saw."""
        self.store.write(lambda tx: tx.add_refresh_parts(generation, len(split), snapshot.dumps()))
        try:
            on_start("matching", sum(len(rows) for rows in split))
            mine = self._rank_claimable_parts(book, generation, split, snapshot.now, report, on_progress)
            for part in self.store.refresh_parts(generation):
                if part.part in mine or part.state is None:
                    continue
                state = PartState.loads(part.state)
                if not np.array_equal(state.rows, split[part.part]):  # the snapshot rules it out
                    raise RuntimeError(f"part {part.part} of generation {generation} came back with other rows")
                book.pool[state.rows], book.pool_floor[state.rows] = state.pool, state.pool_floor
                book.far.put(state.rows, FarResult(state.far_columns, state.far_floor, state.needs_floor,
                                                   state.offers_floor))  # fmt: skip
                book.far_valid[state.rows] = state.far_valid
                report.refreshed += state.lists
                report.suggestions += state.suggestions
                on_progress(len(state.rows))
        except BaseException:
            try:  # the helpers stop finding parts to claim; the generation is abandoned
                self.store.write(lambda tx: tx.delete_refresh_parts(generation))
            except Exception:
                log.warning("generation %s: could not forget its parts", generation, exc_info=True)
            raise
        log.info("generation %s: %d parts, %d ranked here, %d by helpers", generation, len(split), len(mine),
                 len(split) - len(mine))  # fmt: skip

    def _rank_claimable_parts(
        self,
        book: Book,
        generation: int,
        split: list[np.ndarray],
        now: datetime,
        report: RefreshReport,
        on_progress: OnProgress,
    ) -> set[int]:
        """Rank every part this worker can claim, until every part is done (by it or a
        helper; one whose helper stopped is claimed when its lease ends). Returns its own."""
        mine: set[int] = set()
        while True:
            while (part := self._claim_part(generation)) is not None:
                try:
                    lists, suggestions = self._rank_part(book, generation, part.part, split[part.part], now)
                except PartLost:  # too slow: a helper took it over, and its state will say what it saw
                    continue
                if self.store.write(lambda tx, p=part: tx.finish_refresh_part(generation, p.part, self.worker, None)):
                    report.refreshed += lists
                    report.suggestions += suggestions
                    mine.add(part.part)
                    on_progress(len(split[part.part]))
            if all(p.status is PartStatus.DONE for p in self.store.refresh_parts(generation, states=False)):
                return mine
            time.sleep(0.25)

    def _call_for_help(self, generation: int) -> None:
        if self.request_help is not None:
            try:
                self.request_help(generation, self.parts - 1)
            except Exception:  # no queue: this worker ranks every part
                log.warning("could not ask for helpers; ranking every part here", exc_info=True)

    def _claim_part(self, generation: int) -> RefreshPart | None:
        now = datetime.now(UTC)
        lease = now + timedelta(seconds=PART_LEASE_S)
        return self.store.write(lambda tx: tx.claim_refresh_part(generation, self.worker, now, lease))

    def _rank_part(self, book: Book, generation: int, number: int, rows: np.ndarray, now: datetime) -> tuple[int, int]:
        """Rank one claimed part into the generation, holding its lease (PartLost if another
        worker has taken it over)."""
        with self._holding(generation, number):
            return self._rank_rows(book, generation, rows, book.far_candidates(rows), now, _quiet_progress, number)

    @contextmanager
    def _holding(self, generation: int, number: int) -> Iterator[None]:
        """Renew the part's lease a few times a lease while the block runs (a slow search or
        slice must not look like a stopped worker)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(PART_LEASE_S / 4):
                lease = datetime.now(UTC) + timedelta(seconds=PART_LEASE_S)
                try:
                    if not self.store.write(
                        lambda tx, lease=lease: tx.renew_refresh_part(generation, number, self.worker, lease)
                    ):
                        return  # taken over: the next write says so
                except Exception:
                    log.warning("could not renew the lease of part %s of generation %s", number, generation,
                                exc_info=True)  # fmt: skip

        heart = threading.Thread(target=beat, name="netweave-part-lease", daemon=True)
        heart.start()
        try:
            yield
        finally:
            stop.set()
            heart.join()

    def help_refresh(self, generation: int) -> int:
        """As a helper: rank parts of another worker's split refresh until none is left to
        claim. Returns how many parts this worker ranked (0 when its book would not be the
        beginner's: the beginner then ranks them)."""
        begun = self.store.get_generation(generation)
        if begun is None or begun.status is not GenerationStatus.BUILDING:
            return 0
        if begun.rules_digest != self.rules.digest:
            self.reload_rules()  # the rules file was edited: the refresh reads it again, and so does its helper
        # Called as the refresh begins, this book loads while the worker loads its own.
        before = pending_token(self.store.pending_changes())
        book = self.load_book(begun.started_at)
        if pending_token(self.store.pending_changes()) != before:
            log.info("generation %s: the store moved while this book was read; not helping", generation)
            return 0
        given_up = time.monotonic() + HELP_WAIT_S
        while not (parts := self.store.refresh_parts(generation, states=False)):
            still = self.store.get_generation(generation)
            if still is None or still.status is not GenerationStatus.BUILDING:
                return 0  # not split after all (too few rows, or a change landed while it read): done without help
            if time.monotonic() > given_up or self.store.list_generations(limit=1)[0].id != generation:
                return 0  # its worker stopped before splitting it (a newer refresh has begun, or none comes)
            time.sleep(0.25)
        snapshot = Snapshot.loads(parts[0].snapshot)
        if (
            snapshot.pending != before
            or snapshot.now != begun.started_at
            or ids_digest(book.f.ids[: book.f.size]) != snapshot.book
            or self._split_identity(book) != snapshot.identity
        ):
            log.info("generation %s: this book or these settings are not the refresh's; not helping", generation)
            return 0
        rows = _by_market(book)
        split = split_by_market(rows, book.f.market[rows], parts[0].parts)
        ranked = 0
        while (part := self._claim_part(generation)) is not None:
            part_rows = split[part.part]
            try:
                lists, suggestions = self._rank_part(book, generation, part.part, part_rows, snapshot.now)
            except PartLost:
                log.warning("generation %s: part %s was taken over by another worker", generation, part.part)
                continue
            except BaseException:  # given back at once, not left to its lease
                self.store.write(lambda tx, p=part: tx.finish_refresh_part(generation, p.part, self.worker, None,
                                                                            done=False))  # fmt: skip
                raise
            state = PartState(
                part_rows, book.pool[part_rows], book.pool_floor[part_rows], book.far.columns[part_rows],
                book.far.floor[part_rows], book.far.needs_floor[part_rows], book.far.offers_floor[part_rows],
                book.far_valid[part_rows], lists, suggestions,
            )  # fmt: skip
            if not self.store.write(
                lambda tx, p=part, s=state: tx.finish_refresh_part(generation, p.part, self.worker, s.dumps())
            ):
                log.warning("generation %s: part %s was taken over before it was done", generation, part.part)
                continue
            ranked += 1
        return ranked

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

    def _write_lists(self, generation: int, lists: Sequence[SuggestionList], part: int | None = None) -> None:
        """A thousand lists a transaction; with a `part`, each transaction also renews its lease
        and fails (PartLost) if another worker has taken the part over."""
        for start in range(0, len(lists), 1000):
            chunk = lists[start : start + 1000]

            def write(tx: GraphWriter, chunk: Sequence[SuggestionList] = chunk) -> None:
                if part is not None:
                    lease = datetime.now(UTC) + timedelta(seconds=PART_LEASE_S)
                    if not tx.renew_refresh_part(generation, part, self.worker, lease):
                        raise PartLost(f"part {part} of generation {generation} was taken over by another worker")
                tx.write_lists(generation, chunk)

            self.store.write(write)

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
