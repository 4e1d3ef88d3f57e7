"""The store contract for serving: account lifecycle, roles, pending changes, generations,
jobs, history and consents. Every backend passes these unchanged."""

from __future__ import annotations

import multiprocessing
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from graph import (
    BusinessRecord,
    BusinessStatus,
    OptOut,
    Role,
    Salesperson,
    Tie,
    TieKind,
    UnknownBusinessError,
    UnknownJobError,
    UnknownSalespersonError,
    open_store,
)
from graph.records import (
    ContactConsent,
    Feedback,
    FeedbackKind,
    GenerationKind,
    GenerationStatus,
    Job,
    JobProgress,
    JobStatus,
    Suggestion,
    SuggestionEvent,
    SuggestionEventKind,
    SuggestionList,
)
from graph.store import SHEET_NEUTRAL, GraphWriter

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)


def business(business_id: str, name: str, salesperson: str = "dana@example.com") -> BusinessRecord:
    return BusinessRecord(business_id, name, salesperson)


@pytest.fixture
def four(store):
    store.upsert_businesses(
        [
            business("A", "Alpha"),
            business("B", "Beta"),
            business("C", "Gamma"),
            business("D", "Delta", "ken@example.com"),
        ],
        T0,
    )
    return store


def pending(store) -> dict[str, int]:
    return {c.business_id: c.version for c in store.pending_changes()}


def suggestion(a: str, b: str, rank: int, score: float = 0.5) -> Suggestion:
    return Suggestion(a, b, rank, score, (f"why {a}",), (f"why {b}",), T0)


def publish(store, kind: GenerationKind, lists: list[SuggestionList], now=T0):
    generation = store.write(
        lambda tx: tx.begin_generation(kind, model="m", rules_digest="r", settings_digest="s", now=now)
    )
    store.write(lambda tx: tx.write_lists(generation.id, lists))
    return store.write(lambda tx: tx.publish_generation(generation.id, now, []))


def listed(store, business_id: str) -> list[str]:
    return [s.other_id for s in store.suggestions_for(business_id)]


# Account lifecycle
def test_archiving_hides_an_account_from_listings_and_restoring_brings_it_back(four):
    assert four.write(lambda tx: tx.set_archived(["B", "C", "B"], True, T1)) == ["B", "C"]
    assert four.write(lambda tx: tx.set_archived(["B"], True, T2)) == [], "already archived"
    assert [b.id for b in four.list_businesses()] == ["A", "D"]
    assert [b.id for b in four.list_businesses(status=BusinessStatus.ARCHIVED)] == ["B", "C"]
    assert [b.id for b in four.list_businesses(status=None)] == ["A", "B", "D", "C"]  # by name
    assert four.count_businesses() == 2 and four.count_businesses(status=BusinessStatus.ARCHIVED) == 2
    assert four.archived_ids(["A", "B", "C", "ghost"]) == {"B", "C"}
    archived = four.get_business("B")
    assert archived.archived_at == T1 and archived.status is BusinessStatus.ARCHIVED
    assert four.stats().businesses == 2 and four.stats().archived == 2
    assert {s.salesperson.id: s.business_count for s in four.list_salespeople()}["dana@example.com"] == 1
    assert four.write(lambda tx: tx.set_archived(["C"], False, T2)) == ["C"]
    assert four.get_business("C").archived_at is None and four.count_businesses() == 3


def test_a_reimport_of_an_archived_account_keeps_it_archived(four):
    four.write(lambda tx: tx.set_archived(["A"], True, T1))
    four.upsert_businesses([replace(business("A", "Alpha"), description="now with more")], T2)
    assert four.get_business("A").archived_at == T1
    assert four.get_business("A").record.description == "now with more"


def test_unknown_ids_get_the_same_error_and_nothing_is_written(four):
    for write in (
        lambda tx: tx.set_archived(["A", "ghost", "phantom"], True, T1),
        lambda tx: tx.set_opt_out("ghost", OptOut("no", T1), T1),
        lambda tx: tx.add_ties([Tie("A", "ghost")], T1),
        lambda tx: tx.add_do_not_introduce("A", "ghost", "", T1),
        lambda tx: tx.record_feedback(Feedback("A", "ghost", FeedbackKind.DISMISSED, T1, "not_relevant")),
        lambda tx: tx.grant_contact(ContactConsent("A", "ghost", "dana@example.com", T1)),
    ):
        with pytest.raises(UnknownBusinessError) as caught:
            four.write(write)
        assert "ghost" in caught.value.ids and "A" not in caught.value.ids
        assert str(caught.value).startswith("unknown business id(s): ")
    assert four.get_business("A").archived_at is None
    with pytest.raises(UnknownSalespersonError):
        four.write(lambda tx: tx.set_salesperson_role("nobody@example.com", Role.MANAGER))
    with pytest.raises(UnknownJobError):
        four.write(lambda tx: tx.update_job("no-such-job", summary="x"))


def test_opt_outs_recorded_here_are_kept_beside_the_crm_flag(four):
    assert four.write(lambda tx: tx.set_opt_out("A", OptOut("asked at the mixer", T1), T1)) is True
    assert four.write(lambda tx: tx.set_opt_out("A", OptOut("asked at the mixer", T2), T2)) is False
    stored = four.get_business("A")
    assert stored.opt_out == OptOut("asked at the mixer", T1) and stored.opted_out
    assert not stored.record.opted_out, "the CRM record is untouched"
    four.upsert_businesses([replace(business("A", "Alpha"), description="re-imported")], T2)
    assert four.get_business("A").opted_out, "an import does not undo it"
    assert four.write(lambda tx: tx.set_opt_out("A", None, T2)) is True
    assert not four.get_business("A").opted_out


def test_ties_and_blocks_can_be_removed(four):
    four.add_ties([Tie("A", "B"), Tie("A", "C", TieKind.PARTNERS_WITH)], T0)
    four.add_do_not_introduce("B", "C", "rivals", T0)
    assert four.write(lambda tx: tx.remove_ties([Tie("B", "A"), Tie("A", "C")], T1)) == 1
    assert four.ties_of("A") == [Tie("A", "C", TieKind.PARTNERS_WITH)]
    assert four.write(lambda tx: tx.remove_do_not_introduce("C", "B", T1)) is True
    assert four.write(lambda tx: tx.remove_do_not_introduce("C", "B", T1)) is False
    assert not four.is_do_not_introduce("B", "C")
    assert four.all_ties(["C"]) == [Tie("A", "C", TieKind.PARTNERS_WITH)]
    assert four.all_ties(["D"]) == []


def test_roles_survive_imports(four):
    four.write(lambda tx: tx.set_salesperson_role("ken@example.com", Role.MANAGER))
    four.upsert_salespeople([Salesperson("ken@example.com", "Ken Okafor", "ken@example.com")])
    four.upsert_businesses([business("E", "Epsilon", "ken@example.com")], T1)
    assert four.get_salesperson("ken@example.com") == Salesperson(
        "ken@example.com", "Ken Okafor", "ken@example.com", Role.MANAGER
    )
    assert four.get_salesperson("dana@example.com").role is Role.SALESPERSON
    assert four.get_salesperson("nobody@example.com") is None


# Pending changes
def test_every_change_that_matters_to_suggestions_is_pending_until_taken_in(store):
    store.upsert_businesses([business("A", "Alpha"), business("B", "Beta")], T0)
    assert pending(store) == {"A": 1, "B": 1}
    store.upsert_businesses([business("A", "Alpha")], T1)
    assert pending(store) == {"A": 1, "B": 1}, "an unchanged record is no change"
    store.add_ties([Tie("A", "B")], T1)
    store.add_do_not_introduce("A", "B", "", T1)
    store.record_feedback(Feedback("A", "B", FeedbackKind.INTRO_MADE, T1))
    store.write(lambda tx: tx.set_archived(["B"], True, T1))
    assert pending(store) == {"A": 4, "B": 5}
    first = store.pending_changes()
    store.write(lambda tx: tx.set_opt_out("A", OptOut("", T2), T2))  # after the refresh read them
    generation = store.write(
        lambda tx: tx.begin_generation(GenerationKind.FULL, model="m", rules_digest="r", settings_digest="s", now=T2)
    )
    store.write(lambda tx: tx.publish_generation(generation.id, T2, first))
    assert pending(store) == {"A": 5}, "a change made meanwhile stays pending"
    assert store.pending_changes()[0].first_at == T0


# Generations
def test_readers_see_the_previous_complete_set_until_a_generation_is_published(four):
    assert four.suggestions_for("A") == [] and four.published_generation() is None
    first = publish(
        four, GenerationKind.FULL, [SuggestionList("A", T0, (suggestion("A", "B", 1), suggestion("A", "C", 2)))]
    )
    assert listed(four, "A") == ["B", "C"]
    second = four.write(
        lambda tx: tx.begin_generation(GenerationKind.FULL, model="m2", rules_digest="r2", settings_digest="s", now=T1)
    )
    four.write(lambda tx: tx.write_lists(second.id, [SuggestionList("A", T1, (suggestion("A", "C", 1),))]))
    four.write(lambda tx: tx.write_lists(second.id, [SuggestionList("A", T1, (suggestion("A", "D", 1),))]))
    assert listed(four, "A") == ["B", "C"], "not published yet: the old list"
    four.write(lambda tx: tx.publish_generation(second.id, T1, []))
    [shown] = four.suggestions_for("A")  # the list written again replaced the first
    assert (shown.other_id, shown.generation, shown.model, shown.rules_digest) == ("D", second.id, "m2", "r2")
    assert second.id > first.id
    assert four.published_generation().id == second.id


def test_an_incremental_generation_replaces_only_the_lists_it_holds(four):
    publish(
        four,
        GenerationKind.FULL,
        [
            SuggestionList("A", T0, (suggestion("A", "B", 1),)),
            SuggestionList("B", T0, (suggestion("B", "A", 1),)),
            SuggestionList("C", T0, (suggestion("C", "A", 1),)),
        ],
    )
    incremental = publish(
        four,
        GenerationKind.INCREMENTAL,
        [SuggestionList("A", T1, (suggestion("A", "C", 1),)), SuggestionList("C", T1)],
        T1,
    )
    assert listed(four, "A") == ["C"] and listed(four, "B") == ["A"] and listed(four, "C") == []
    everything = [(s.business_id, s.other_id) for s in four.all_suggestions()]
    assert everything == [("A", "C"), ("B", "A")]
    # A salesperson's book in one read: the same lists as one by one (D is Ken's and has none).
    danas = four.suggestions_for_salesperson("dana@example.com")
    one_by_one = [s for b in ("A", "B", "C") for s in four.suggestions_for(b)]
    assert danas == sorted(one_by_one, key=lambda s: (s.score, s.business_id, s.other_id), reverse=True)
    assert four.suggestions_for_salesperson("dana@example.com", limit=1) == danas[:1]
    assert four.suggestions_for_salesperson("ken@example.com") == []
    assert four.prune_lists(superseded_by=incremental.id) == 2, "A's and C's first lists"
    assert [(s.business_id, s.other_id) for s in four.all_suggestions()] == everything
    publish(four, GenerationKind.FULL, [SuggestionList("D", T2, (suggestion("D", "A", 1),))], T2)
    assert listed(four, "B") == [], "a full generation replaces every list"
    assert [(s.business_id, s.other_id) for s in four.all_suggestions()] == [("D", "A")]
    assert four.prune_lists(below_base=1) == 1, "a batch at a time"
    assert four.prune_lists(below_base=100) == 2
    assert four.prune_lists(abandoned=True, below_base=100) == 0
    assert [(s.business_id, s.other_id) for s in four.all_suggestions()] == [("D", "A")]


def test_the_workers_sweep_deletes_replaced_lists_a_step_at_a_time_pausing_between(four, monkeypatch):
    from netweave.matching import refresh
    from netweave.matching.rules import Rules

    lists = [SuggestionList(b, T0, (suggestion(b, "D", 1),)) for b in ("A", "B", "C")]
    publish(four, GenerationKind.FULL, lists)
    publish(four, GenerationKind.FULL, [SuggestionList("D", T1, (suggestion("D", "A", 1),))], T1)
    monkeypatch.setattr(refresh, "PRUNE_STEP", 1)
    steps, pauses = [], []
    prune_lists = four.prune_lists
    monkeypatch.setattr(four, "prune_lists", lambda **kw: steps.append(kw) or prune_lists(**kw))
    monkeypatch.setattr(refresh.time, "sleep", pauses.append)
    matcher = refresh.Matcher(four, embedder=None, rules=Rules.load())  # type: ignore[arg-type]  (no text here)
    assert matcher.prune(most=2) == 2, "no more than asked for"
    assert steps == [{"below_base": 1}] * 2 and len(pauses) == 2, "one list a transaction, a pause after each"
    assert matcher.prune(most=5) == 1
    assert [(s.business_id, s.other_id) for s in four.all_suggestions()] == [("D", "A")]


def test_a_salespersons_best_follow_a_business_moved_to_another_book(four):
    publish(
        four,
        GenerationKind.FULL,
        [
            SuggestionList("A", T0, (suggestion("A", "D", 1, 0.9), suggestion("A", "B", 2, 0.4))),
            SuggestionList("B", T0, (suggestion("B", "A", 1, 0.7),)),
        ],
    )
    assert [(s.business_id, s.other_id) for s in four.suggestions_for_salesperson("dana@example.com", 2)] == [
        ("A", "D"),
        ("B", "A"),
    ]
    four.upsert_businesses([business("A", "Alpha", "ken@example.com")], T1)
    # A's list was written while Dana managed A: it leaves her best at once, and reaches
    # Ken's with A's next list.
    assert [(s.business_id, s.other_id) for s in four.suggestions_for_salesperson("dana@example.com")] == [("B", "A")]
    assert four.suggestions_for_salesperson("ken@example.com") == []
    publish(four, GenerationKind.INCREMENTAL, [SuggestionList("A", T1, (suggestion("A", "C", 1, 0.8),))], T1)
    assert [(s.business_id, s.other_id) for s in four.suggestions_for_salesperson("ken@example.com")] == [("A", "C")]
    assert [s.other_id for s in four.suggestions_for_salesperson("dana@example.com")] == ["A"]


def test_a_sheet_holds_all_that_showing_suggestions_takes(four):
    publish(
        four,
        GenerationKind.FULL,
        [
            SuggestionList("A", T0, (suggestion("A", "D", 1, 0.9), suggestion("A", "B", 2, 0.4))),
            SuggestionList("B", T0, (suggestion("B", "A", 1, 0.7), suggestion("B", "D", 2, 0.4))),
        ],
    )
    four.write(lambda tx: tx.grant_contact(ContactConsent("D", "A", "ken@example.com", T1)))  # D's with A only
    four.write(lambda tx: tx.grant_contact(ContactConsent("C", "A", "dana@example.com", T1)))  # not a pair shown
    everyone = four.get_salespeople(["dana@example.com", "ken@example.com"])

    sheet = four.suggestion_sheet("A")
    assert sheet.suggestions == tuple(four.suggestions_for("A"))
    assert sheet.businesses == four.get_businesses(["A", "B", "D"])
    assert sheet.salespeople == everyone
    assert sheet.shared_contacts == {("D", "A")}
    assert sheet.published == four.match_state().published is not None

    best = four.best_sheet("dana@example.com", 5)
    rows = four.suggestions_for_salesperson("dana@example.com")
    assert [(s.business_id, s.other_id) for s in rows] == [("A", "D"), ("B", "A"), ("B", "D"), ("A", "B")]
    assert best.suggestions == tuple(rows[:3]), "each pair once: A-B from its better side, B"
    assert [(s.business_id, s.other_id) for s in four.best_sheet("dana@example.com", 2).suggestions] == [
        ("A", "D"),
        ("B", "A"),
    ]
    assert best.businesses == four.get_businesses(["A", "B", "D"]) and best.salespeople == everyone
    assert best.shared_contacts == {("D", "A")}, "D shares with A, not with B"

    # Without suggestions: what was asked about, if it exists.
    quiet = four.suggestion_sheet("C")
    assert (quiet.suggestions, set(quiet.businesses), set(quiet.salespeople)) == ((), {"C"}, {"dana@example.com"})
    assert four.suggestion_sheet("ghost").businesses == {}
    kens = four.best_sheet("ken@example.com", 5)
    assert (kens.suggestions, kens.businesses, set(kens.salespeople)) == ((), {}, {"ken@example.com"})
    assert four.best_sheet("nobody@example.com", 5).salespeople == {}


def test_a_cached_sheet_is_read_again_after_any_write_that_may_change_it(four, store_settings):
    publish(four, GenerationKind.FULL, [SuggestionList("A", T0, (suggestion("A", "B", 1), suggestion("A", "D", 2)))])
    version = four.view_version()
    assert version is not None
    best = four.best_sheet("dana@example.com", 5)
    assert four.best_sheet("dana@example.com", 5) is best, "kept while nothing changes"

    # What never shows in a sheet keeps the version, and the sheets with it.
    four.write(lambda tx: tx.mark_pending(["A"], T1))
    event = SuggestionEvent(best.suggestions[0], SuggestionEventKind.SHOWN, "web", T1)
    four.write(lambda tx: tx.record_suggestion_events([event]))
    four.write(
        lambda tx: tx.begin_generation(GenerationKind.FULL, model="m", rules_digest="r", settings_digest="s", now=T1)
    )
    assert four.view_version() == version
    assert four.best_sheet("dana@example.com", 5) is best

    # A write that fails changes nothing, the version included.
    with pytest.raises(UnknownBusinessError):
        four.write(lambda tx: tx.add_ties([Tie("A", "ghost")], T1))
    assert four.view_version() == version

    # Another process's writes: each renews the version, and this one reads the sheet again.
    def danas_best():
        return four.best_sheet("dana@example.com", 5)

    other = open_store(store_settings)
    try:
        changes = [
            (lambda tx: tx.upsert_businesses([business("B", "Beta Bakery")], T1),
             lambda: danas_best().businesses["B"].record.name == "Beta Bakery"),
            (lambda tx: tx.grant_contact(ContactConsent("D", "A", "ken@example.com", T1)),
             lambda: danas_best().shared_contacts == {("D", "A")}),
            (lambda tx: tx.upsert_salespeople([Salesperson("ken@example.com", "Ken Ito", "ken@example.com")]),
             lambda: danas_best().salespeople["ken@example.com"].name == "Ken Ito"),
            (lambda tx: tx.record_feedback(Feedback("A", "D", FeedbackKind.DISMISSED, T2, "not_relevant")),
             lambda: listed_in(danas_best()) == ["B"]),
            (lambda tx: tx.add_ties([Tie("A", "B")], T2), lambda: listed_in(danas_best()) == []),
        ]  # fmt: skip
        for write, shown in changes:
            other.write(write)
            assert four.view_version() != version
            version = four.view_version()
            assert shown()
        later = T2 + timedelta(hours=1)
        publish(other, GenerationKind.INCREMENTAL, [SuggestionList("A", later, (suggestion("A", "C", 1),))], later)
        assert four.view_version() != version
        assert listed_in(danas_best()) == ["C"]
        other.write(lambda tx: tx.set_archived(["C"], True, later))
        assert listed_in(danas_best()) == []
    finally:
        other.close()


def listed_in(sheet) -> list[str]:
    return [s.other_id for s in sheet.suggestions]


def test_every_write_that_keeps_the_view_version_is_a_writer_operation():
    operations = {name for name in dir(GraphWriter) if not name.startswith("_")}
    assert operations > SHEET_NEUTRAL, SHEET_NEUTRAL - operations


def test_a_refresh_that_crashed_is_never_shown_even_after_a_later_one(four):
    publish(four, GenerationKind.FULL, [SuggestionList("A", T0, (suggestion("A", "B", 1),))])
    crashed = four.write(
        lambda tx: tx.begin_generation(
            GenerationKind.INCREMENTAL, model="m", rules_digest="r", settings_digest="s", now=T1
        )
    )
    four.write(lambda tx: tx.write_lists(crashed.id, [SuggestionList("A", T1, (suggestion("A", "C", 1),))]))
    # the next refresh starts: the crashed one is abandoned and its lists pruned
    later = four.write(
        lambda tx: tx.begin_generation(
            GenerationKind.INCREMENTAL, model="m", rules_digest="r", settings_digest="s", now=T2
        )
    )
    assert four.prune_lists(abandoned=True) == 1
    four.write(lambda tx: tx.write_lists(later.id, [SuggestionList("B", T2, (suggestion("B", "D", 1),))]))
    four.write(lambda tx: tx.publish_generation(later.id, T2, []))
    assert listed(four, "A") == ["B"], "the crashed generation's list for A never shows"
    assert four.get_generation(crashed.id).status is GenerationStatus.ABANDONED
    with pytest.raises(ValueError, match="not building"):
        four.write(lambda tx: tx.publish_generation(crashed.id, T2, []))
    assert [g.id for g in four.list_generations()] == [later.id, crashed.id, later.id - 2]


def test_published_suggestions_that_became_unsafe_are_not_shown(four):
    four.upsert_businesses([business("E", "Epsilon"), business("F", "Phi")], T0)
    lists = [SuggestionList("A", T0, tuple(suggestion("A", other, n) for n, other in enumerate("BCDEF", 1)))]
    publish(four, GenerationKind.FULL, lists)
    assert listed(four, "A") == ["B", "C", "D", "E", "F"]
    four.write(lambda tx: tx.set_archived(["B"], True, T1))
    four.write(lambda tx: tx.set_opt_out("C", OptOut("", T1), T1))
    four.add_do_not_introduce("A", "D", "", T1)
    four.add_ties([Tie("E", "A")], T1)
    four.record_feedback(Feedback("F", "A", FeedbackKind.DISMISSED, T1, "bad_timing"))
    assert listed(four, "A") == []
    four.record_feedback(Feedback("A", "B", FeedbackKind.DISMISSED, T0 - timedelta(days=1), "bad_timing"))
    assert four.all_suggestions() == []


def test_suggestions_naming_a_business_that_is_gone_are_left_out(four):
    generation = four.write(
        lambda tx: tx.begin_generation(GenerationKind.FULL, model="m", rules_digest="r", settings_digest="s", now=T0)
    )
    four.write(
        lambda tx: tx.write_lists(
            generation.id,
            [
                SuggestionList("A", T0, (suggestion("A", "ghost", 1), suggestion("A", "B", 2))),
                SuggestionList("ghost", T0),
            ],
        )
    )
    published = four.write(lambda tx: tx.publish_generation(generation.id, T0, []))
    assert listed(four, "A") == ["B"]
    assert (published.lists, published.suggestions) == (1, 1)


# History and consents
def test_suggestions_shown_or_acted_on_are_kept(four):
    publish(four, GenerationKind.FULL, [SuggestionList("A", T0, (suggestion("A", "B", 1),))])
    [shown] = four.suggestions_for("A")
    four.write(
        lambda tx: tx.record_suggestion_events(
            [
                SuggestionEvent(shown, SuggestionEventKind.SHOWN, "web", T1, "dana@example.com"),
                SuggestionEvent(
                    shown, SuggestionEventKind.ACTED, "cli", T2, "dana@example.com", "dismissed:not_relevant"
                ),
            ]
        )
    )
    publish(four, GenerationKind.FULL, [], T2)
    assert four.prune_lists(below_base=100) == 1
    events = four.suggestion_events("B")
    assert [(e.kind, e.channel, e.detail) for e in events] == [
        (SuggestionEventKind.SHOWN, "web", ""),
        (SuggestionEventKind.ACTED, "cli", "dismissed:not_relevant"),
    ]
    assert events[0].suggestion == shown, "the suggestion as it was, generation and all"
    assert four.suggestion_events("C") == []


def test_contact_consents(four):
    consent = ContactConsent("D", "A", "ken@example.com", T1)
    assert four.write(lambda tx: tx.grant_contact(consent)) is True
    assert four.write(lambda tx: tx.grant_contact(replace(consent, at=T2))) is False
    assert four.contact_consents("D") == [consent]
    assert four.contact_consents("A") == []
    other = ContactConsent("A", "D", "dana@example.com", T2)
    four.write(lambda tx: tx.grant_contact(other))
    assert four.contact_consents_of(["D", "A", "B", "D"]) == [other, consent]  # by business, then other
    assert four.contact_consents_of([]) == []


# Jobs
def job(kind: str = "refresh_changes", at: datetime = T0) -> Job:
    return Job(
        f"job-{kind}-{at.timestamp():.0f}-{threading.get_ident()}", kind, JobStatus.QUEUED, at, "dana@example.com"
    )


def test_jobs_coalesce_while_queued_and_are_claimed_once(store):
    first, created = store.write(lambda tx: tx.create_job(job(at=T0), coalesce_key="refresh_changes"))
    again, created_again = store.write(lambda tx: tx.create_job(job(at=T1), coalesce_key="refresh_changes"))
    assert created and not created_again and again.id == first.id
    claimed = store.write(lambda tx: tx.claim_job(first.id, T1))
    assert claimed.status is JobStatus.RUNNING and claimed.attempts == 1 and claimed.started_at == T1
    assert store.write(lambda tx: tx.claim_job(first.id, T1)) is None, "claimed once"
    later, created_later = store.write(lambda tx: tx.create_job(job(at=T2), coalesce_key="refresh_changes"))
    assert created_later and later.id != first.id, "a running job no longer takes requests in"
    store.write(lambda tx: tx.update_job(first.id, progress=JobProgress("matching", 5, 10)))
    assert store.get_job(first.id).progress == JobProgress("matching", 5, 10)
    store.write(lambda tx: tx.update_job(first.id, status=JobStatus.DONE, now=T2, summary="ok"))
    done = store.get_job(first.id)
    assert (done.status, done.finished_at, done.summary) == (JobStatus.DONE, T2, "ok")
    assert [j.id for j in store.list_jobs()] == [later.id, first.id]
    assert [j.id for j in store.list_jobs(status=JobStatus.QUEUED)] == [later.id]
    assert store.get_job("nope") is None


def test_running_jobs_of_a_dead_worker_go_back_to_the_queue(store):
    queued, _ = store.write(lambda tx: tx.create_job(job("refresh_all", T0)))
    store.write(lambda tx: tx.claim_job(queued.id, T1))
    store.write(lambda tx: tx.update_job(queued.id, progress=JobProgress("matching", 1, 9)))
    [back] = store.write(lambda tx: tx.requeue_running_jobs(3, T2))
    assert back.id == queued.id and back.status is JobStatus.QUEUED and back.progress is None
    assert store.write(lambda tx: tx.claim_job(queued.id, T2)).attempts == 2


def test_a_job_that_stopped_its_worker_three_times_is_failed_not_run_again(store):
    queued, _ = store.write(lambda tx: tx.create_job(job("refresh_all", T0)))
    for attempt in (1, 2, 3):
        assert store.write(lambda tx: tx.claim_job(queued.id, T1)).attempts == attempt
        [back] = store.write(lambda tx: tx.requeue_running_jobs(3, T2))
    assert (back.status, back.finished_at, back.error) == (
        JobStatus.FAILED, T2, "gave up after 3 attempts: its worker stopped while running it each time"
    )  # fmt: skip
    assert store.get_job(queued.id).status is JobStatus.FAILED
    assert store.write(lambda tx: tx.claim_job(queued.id, T2)) is None
    store.write(lambda tx: tx.update_job(queued.id))  # nothing to change: a no-op on both backends


# Process-level safety
def _migrate(settings) -> list[str]:
    store = open_store(settings)
    try:
        return store.migrate()
    finally:
        store.close()


def test_several_processes_starting_at_once_migrate_once(store_settings, store, backend):
    if backend == "neo4j":  # forget what was applied (the schema statements are re-runnable)
        store.driver.execute_query("MATCH (m:SchemaMigration) DETACH DELETE m", database_=store.database)
    else:
        store.close()
        (path := store.path).unlink()
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        applied = pool.map(_migrate, [store_settings] * 4)
    everything = [
        "001_customer_graph",
        "002_matching",
        "003_serving",
        "004_api",
        "005_introductions",
        "006_idempotency",
        "007_webhooks",
        "008_best_first",
        "009_sign_in",
        "010_digest_preferences",
        "011_digests",
        "012_refresh_parts",
        "013_view_version",
    ]
    assert sorted(name for names in applied for name in names) == everything, applied
    reopened = open_store(store_settings)
    try:
        assert reopened.applied_migrations() == everything
        if backend == "neo4j":
            records, _, _ = reopened.driver.execute_query("MATCH (m:SchemaMigration) RETURN count(m) AS n")
            assert records[0]["n"] == len(everything), "each migration recorded once"
    finally:
        reopened.close()


def test_every_sqlite_connection_is_closed(tmp_path):
    store = open_store_at(tmp_path)
    store.upsert_businesses([business("A", "Alpha")], T0)

    def read() -> None:
        for _ in range(20):
            store.get_business("A")
            store.count_businesses()

    threads = [threading.Thread(target=read) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= store.open_connections <= 12
    store.close()
    assert store.open_connections == 0


def open_store_at(folder):
    from graph import StoreSettings

    store = open_store(StoreSettings(url=str(folder / "pool.sqlite3")))
    store.migrate()
    return store


def test_a_generation_says_which_suggestions_its_lists_gained(four):
    first = publish(four, GenerationKind.FULL, [
        SuggestionList("A", T0, (suggestion("A", "B", 1), suggestion("A", "C", 2))),
        SuggestionList("B", T0, (suggestion("B", "A", 1),)),
    ])  # fmt: skip
    assert four.new_in_generation(first.id) == [("A", "B", 1, 0.5), ("A", "C", 2, 0.5), ("B", "A", 1, 0.5)]
    second = publish(four, GenerationKind.INCREMENTAL, [
        SuggestionList("A", T1, (suggestion("A", "C", 1, 0.7), suggestion("A", "D", 2, 0.6))),
        SuggestionList("C", T1, (suggestion("C", "A", 1),)),
    ], now=T1)  # fmt: skip
    # A gained D (C was there before, now ranked first); C's first list is new throughout; B was not refreshed.
    assert four.new_in_generation(second.id) == [("A", "D", 2, 0.6), ("C", "A", 1, 0.5)]


def _write_many(settings, writer: int, count: int) -> int:
    """One process of several writing at once: upserts and feedback from two threads each."""
    store = open_store(settings)
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for n in range(count):
                key = f"P{writer}-{thread}-{n}"
                store.upsert_businesses([business(key, f"Writer {key}")], T0)
                store.record_feedback(Feedback("A", "B", FeedbackKind.DISMISSED, T1, "not_relevant"))
        except BaseException as error:  # reported to the parent, which fails the test
            errors.append(error)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    if errors:
        raise errors[0]
    return 2 * count


def test_many_writers_in_several_processes_never_meet_a_locked_database(four, store_settings, backend):
    """WAL and the busy timeout on the embedded store (and Neo4j's own locking): every write of
    4 processes x 2 threads lands, none fails with 'database is locked'."""
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        written = pool.starmap(_write_many, [(store_settings, w, 40) for w in range(4)])
    assert sum(written) == 320
    assert four.count_businesses() == 4 + 320
