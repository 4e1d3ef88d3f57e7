"""The service layer: who may see what, and an account's lifecycle, on both backends.

These are the functions the CLI, the API, the web app and the email call, so what holds
here holds on every surface.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from graph import BusinessRecord, Place, Role, StoredBusiness, TieKind
from graph.records import FeedbackKind, SuggestionEventKind
from netweave.importer import SyncRefused, prepare_rows
from netweave.importer.reader import RawRow, Rejection
from netweave.matching.refresh import Matcher
from netweave.matching.settings import MatchSettings
from netweave.services import customers, matches, network
from netweave.services.access import NotAllowed, NotFound, Viewer, viewer_for

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
MPLS = Place("Minneapolis", "MN", "US", "Twin Cities", 44.98, -93.27)
DANA, KEN, MAYA = "dana@example.com", "ken@example.com", "maya@example.com"


def biz(business_id, name, owner, kind, description, customers="", needs="", **more) -> BusinessRecord:
    return BusinessRecord(
        business_id, name, owner, description, customers, needs, categories=(kind,), place=MPLS,
        email=f"hello@{business_id.lower()}.example", contact_name=f"Owner of {name}", **more,
    )  # fmt: skip


FLORIST = biz("F1", "Petal & Stem", DANA, "Florist", "Wedding and event flowers", "engaged couples", "venue referrals")
VENUE = biz("V1", "Lakeside Venue", DANA, "Wedding Venue", "Lakeside wedding venue", "engaged couples", "a florist")
BARN = biz("V2", "Summit Barn", KEN, "Wedding Venue", "Barn venue for weddings", "engaged couples", "florists")
REALTOR = biz("R1", "Olson Realty", KEN, "Real Estate Agent", "Helps buyers find homes", "home buyers", "a lender")
LENDER = biz("M1", "Keystone Lending", KEN, "Mortgage Broker", "Mortgages for home buyers", "home buyers", "realtors")


@pytest.fixture
def book(store, matcher):
    store.upsert_businesses([FLORIST, VENUE, BARN, REALTOR, LENDER], T0)
    store.write(lambda tx: tx.set_salesperson_role(MAYA, Role.MANAGER)) if store.get_salesperson(MAYA) else None
    matcher.refresh_all(now=T0)
    return store


def others(views) -> list[str]:
    return [v.other.id for v in views]


def test_a_salesperson_sees_suggestions_of_their_own_book_only(book, store):
    dana, ken = Viewer(DANA), Viewer(KEN)
    assert set(others(matches.suggestions_for_business(store, dana, "F1"))) == {"V1", "V2"}
    with pytest.raises(NotAllowed, match=r"dana@example\.com does not manage customer 'R1'"):
        matches.suggestions_for_business(store, dana, "R1")
    with pytest.raises(NotAllowed):
        matches.best_for_salesperson(store, dana, KEN)
    best = matches.best_for_salesperson(store, ken, KEN)
    assert best and all(v.business.owner_id == KEN or v.other.owner_id == KEN for v in best)
    pairs = [frozenset((v.business.id, v.other.id)) for v in best]
    assert len(pairs) == len(set(pairs)), "each pair once"
    assert [v.score for v in best] == sorted((v.score for v in best), reverse=True)
    with pytest.raises(NotFound):
        matches.suggestions_for_business(store, dana, "ghost")


def test_a_manager_sees_every_book(book, store):
    store.upsert_salespeople([])
    store.upsert_businesses([replace(FLORIST, id="F9", name="Bloom Room", salesperson_id=MAYA)], T0)
    store.write(lambda tx: tx.set_salesperson_role(MAYA, Role.MANAGER))
    maya = viewer_for(store, "MAYA@example.com ")
    assert maya.role is Role.MANAGER and maya.sees_every_book
    assert others(matches.suggestions_for_business(store, maya, "R1")) == ["M1"]
    assert matches.best_for_salesperson(store, maya, DANA)
    with pytest.raises(NotFound):
        viewer_for(store, "nobody@example.com")


def test_pairs_across_books_name_both_owners_and_hide_contacts_until_shared(book, store):
    dana, ken = Viewer(DANA), Viewer(KEN)
    views = {v.other.id: v for v in matches.suggestions_for_business(store, dana, "F1")}
    same, across = views["V1"], views["V2"]
    assert not same.across_books and same.other.contact is not None and same.other.mine
    assert across.across_books and across.other.owner_id == KEN and across.business.owner_id == DANA
    assert across.other.contact is None, "hidden until Ken's customer agrees"
    assert across.other.website == BARN.website and across.other.name == "Summit Barn"
    with pytest.raises(NotAllowed):
        matches.share_contact(store, dana, "V2", "F1")  # only the owner of V2 can share it
    assert matches.share_contact(store, ken, "V2", "F1", T0) is True
    shared = {v.other.id: v for v in matches.suggestions_for_business(store, dana, "F1")}["V2"]
    assert shared.other.contact.email == "hello@v2.example"
    manager = Viewer(None, Role.MANAGER)
    assert all(v.other.contact for v in matches.suggestions_for_business(store, manager, "R1"))


def test_with_pairs_across_books_switched_off_no_suggestion_spans_two_books(store, embedder, rules):
    store.upsert_businesses([FLORIST, VENUE, BARN, REALTOR, LENDER], T0)
    Matcher(store, embedder, rules, MatchSettings(across_books=False)).refresh_all(now=T0)
    suggestions = store.all_suggestions()
    owner = {b.id: b.record.salesperson_id for b in store.all_businesses()}
    assert suggestions and all(owner[s.business_id] == owner[s.other_id] for s in suggestions)
    assert [s.other_id for s in store.suggestions_for("F1")] == ["V1"]


def test_archived_accounts_leave_every_list_and_come_back_with_their_history(book, store, matcher, jobs):
    dana = Viewer(DANA)
    matches.mark_shown(store, dana, matches.suggestions_for_business(store, dana, "F1"), "web", T0)
    matches.record_feedback(store, jobs, dana, "F1", "V2", FeedbackKind.DISMISSED, "not_relevant", now=T0)
    network.block(store, jobs, dana, "F1", "M1", "never", T0)
    assert customers.archive(store, jobs, dana, ["V1"], T0) == ["V1"]
    assert others(matches.suggestions_for_business(store, dana, "F1")) == [], "gone at once"
    with pytest.raises(NotFound, match="archived"):
        matches.suggestions_for_business(store, dana, "V1")
    matcher.refresh_changes(now=T0)
    assert "V1" not in [s.other_id for s in store.all_suggestions()]
    assert customers.restore(store, jobs, dana, ["V1"], T0) == ["V1"]
    matcher.refresh_changes(now=T0)
    assert others(matches.suggestions_for_business(store, dana, "F1")) == ["V1"], "V2 stays dismissed"
    assert store.is_do_not_introduce("F1", "M1")
    kinds = [e.kind for e in store.suggestion_events("F1")]
    assert kinds.count(SuggestionEventKind.SHOWN) == 2, "the two suggestions Dana saw"
    acted = [e for e in store.suggestion_events("F1") if e.kind is SuggestionEventKind.ACTED]
    assert {(e.suggestion.business_id, e.suggestion.other_id) for e in acted} == {("F1", "V2"), ("V2", "F1")}, (
        "the pair as each side's list held it"
    )
    assert {(e.detail, e.salesperson_id, e.suggestion.generation) for e in acted} == {
        ("dismissed:not_relevant", DANA, 1)
    }
    assert acted[0].suggestion.model == matcher.embedder.name


def test_changes_need_the_right_book_and_unknown_ids_change_nothing(book, store, jobs):
    dana = Viewer(DANA)
    with pytest.raises(NotAllowed):
        customers.archive(store, jobs, dana, ["F1", "R1"])
    assert store.get_business("F1").archived_at is None, "all or nothing"
    with pytest.raises(NotFound, match="no customer with id 'ghost'"):
        customers.archive(store, jobs, Viewer.system(), ["F1", "ghost"])
    assert store.get_business("F1").archived_at is None
    with pytest.raises(NotAllowed):
        network.add_tie(store, jobs, dana, "R1", "M1", TieKind.KNOWS)
    assert network.add_tie(store, jobs, dana, "F1", "M1", TieKind.KNOWS) is True, "one side of the pair is enough"
    with pytest.raises(NotAllowed):
        matches.record_feedback(store, jobs, dana, "R1", "M1", FeedbackKind.INTRO_MADE)
    with pytest.raises(ValueError, match="reason"):
        matches.record_feedback(store, jobs, dana, "F1", "V1", FeedbackKind.DISMISSED, "meh")
    with pytest.raises(NotAllowed):
        customers.set_role(store, dana, KEN, Role.MANAGER)
    with pytest.raises(NotAllowed):
        customers.opt_out(store, jobs, dana, "R1", "no")


def test_opting_out_through_the_service_holds_until_opted_in(book, store, matcher, jobs):
    ken = Viewer(KEN)
    assert customers.opt_out(store, jobs, ken, "M1", "asked us", T0) is True
    assert store.suggestions_for("R1") == []
    matcher.refresh_changes(now=T0)
    assert store.get_business("M1").opted_out and store.suggestions_for("M1") == []
    assert customers.opt_in(store, jobs, ken, "M1", T0) is True
    matcher.refresh_changes(now=T0)
    assert [s.other_id for s in store.suggestions_for("R1")] == ["M1"]


def rows(*records: BusinessRecord) -> list[RawRow]:
    return [RawRow(n + 2, {"id": r.id, "name": r.name, "salesperson": r.salesperson_id}) for n, r in enumerate(records)]


def test_sync_archives_what_a_full_export_no_longer_holds(book, store, jobs):
    ken = Viewer(KEN)
    prepared = prepare_rows(rows(BARN, REALTOR))  # Ken's export without the lender
    plan = customers.plan_sync(store, ken, prepared)
    assert plan.ids == ["M1"]
    with pytest.raises(NotAllowed):
        customers.plan_sync(store, Viewer(DANA), prepared)
    report = customers.import_customers(store, jobs, ken, prepared, sync=plan)
    assert report.archived == ["M1"] and store.get_business("M1").archived_at is not None
    assert store.get_business("F1").archived_at is None, "another book is untouched"
    with_bad_row = replace(prepared, rejected=[Rejection(9, "name: missing", None)])
    with pytest.raises(SyncRefused, match="no id"):
        customers.plan_sync(store, ken, with_bad_row)


def test_a_salesperson_cannot_take_over_another_books_account_by_import(book, store, jobs):
    """Dana's file names her as the salesperson of Ken's realtor: refused, nothing written."""
    takeover = prepare_rows(
        [RawRow(2, {"id": "F1", "name": "Petal & Stem", "salesperson": DANA}),
         RawRow(3, {"id": "R1", "name": "Dana's Realty", "salesperson": DANA})]
    )  # fmt: skip
    assert not takeover.rejected
    with pytest.raises(NotAllowed, match=r"line 3 \(R1, managed by ken@example\.com\)"):
        customers.import_customers(store, jobs, Viewer(DANA), takeover)
    with pytest.raises(NotAllowed, match="R1"):
        customers.plan_sync(store, Viewer(DANA), takeover)
    realtor = store.get_business("R1").record
    assert (realtor.name, realtor.salesperson_id) == ("Olson Realty", KEN)
    assert store.get_business("F1").record.name == "Petal & Stem"
    customers.import_customers(store, jobs, Viewer.system(), takeover)
    assert store.get_business("R1").record.salesperson_id == DANA, "a manager may move it"


def test_a_status_column_archives_and_restores(book, store, jobs):
    system = Viewer.system()
    archive = prepare_rows([RawRow(2, {"id": "R1", "name": "Olson Realty", "salesperson": KEN, "status": "inactive"})])
    assert not archive.rejected
    assert customers.import_customers(store, jobs, system, archive).archived == ["R1"]
    again = prepare_rows([RawRow(2, {"id": "R1", "name": "Olson Realty 2", "salesperson": KEN})])
    report = customers.import_customers(store, jobs, system, again)
    assert store.get_business("R1").archived_at is not None and "stays archived" in report.warnings[0].reason
    restore = prepare_rows([RawRow(2, {"id": "R1", "name": "Olson Realty", "salesperson": KEN, "status": "Active"})])
    assert customers.import_customers(store, jobs, system, restore).restored == ["R1"]
    bad = prepare_rows([RawRow(2, {"id": "R1", "name": "Olson Realty", "salesperson": KEN, "status": "maybe"})])
    assert bad.rejected[0].reason == "status: 'maybe' is not a status (use active or archived)"


def stored(record: BusinessRecord) -> StoredBusiness:
    return StoredBusiness(record, T0, T0 + timedelta(seconds=1))


def test_viewers_manage_their_own_businesses():
    assert Viewer(DANA).manages(stored(FLORIST)) and not Viewer(DANA).manages(stored(BARN))
    assert Viewer(None, Role.MANAGER).manages(stored(BARN)) and Viewer.system().label == "system"


def test_a_block_one_side_set_is_lifted_only_by_who_manages_both(book, store, jobs):
    dana, ken = Viewer(DANA), Viewer(KEN)
    assert network.block(store, jobs, ken, "F1", "V2", "Ken's client asked", T0) is True
    with pytest.raises(NotAllowed, match=r"does not manage 'V2': a block is lifted by one who manages both"):
        network.unblock(store, jobs, dana, "F1", "V2", T0)
    assert store.is_do_not_introduce("F1", "V2")
    assert network.block(store, jobs, dana, "F1", "V1", "her own pair", T0)
    assert network.unblock(store, jobs, dana, "F1", "V1", T0) is True, "both hers"
    assert network.unblock(store, jobs, Viewer.system(), "F1", "V2", T0) is True
