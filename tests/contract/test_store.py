"""The graph store contract: every backend passes these unchanged."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from neo4j.exceptions import Neo4jError

from graph import (
    BusinessRecord,
    Place,
    Salesperson,
    Tie,
    TieKind,
    UnknownBusinessError,
    UnknownSalespersonError,
    UpsertOutcome,
)
from graph.records import (
    ApiToken,
    DeliveryStatus,
    IdempotentRequest,
    InferredCategory,
    Introduction,
    IntroFeedback,
    IntroStatus,
    IntroStep,
    TokenScope,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
MINNEAPOLIS = Place("Minneapolis", "MN", "US", "Twin Cities", 44.98, -93.27)
AUSTIN = Place("Austin", "TX", "US", "Austin", 30.27, -97.74)


def florist(**changes) -> BusinessRecord:
    record = BusinessRecord(
        id="ACC-1",
        name="Petal & Stem",
        salesperson_id="dana@example.com",
        description="Wedding and event flowers",
        customers="engaged couples",
        needs="venue referrals",
        website="https://petalandstem.com",
        email="hello@petalandstem.com",
        contact_name="Maria Olson",
        employees=6,
        categories=("Florist", "Event Decor"),
        place=MINNEAPOLIS,
    )
    return replace(record, **changes)


def business(business_id: str, name: str, **changes) -> BusinessRecord:
    return replace(BusinessRecord(id=business_id, name=name, salesperson_id="dana@example.com"), **changes)


def test_migrations_are_recorded_and_idempotent(store):
    assert store.applied_migrations() == [
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
    assert store.migrate() == []


def test_a_written_business_reads_back_equal(store):
    assert store.upsert_businesses([florist()], T0) == [UpsertOutcome.CREATED]
    stored = store.get_business("ACC-1")
    assert stored.record == florist()
    assert stored.created_at == T0
    assert stored.updated_at == T0


def test_businesses_of_one_city_keep_their_own_place(store):
    """A Place is shared by a city: one row's metro, spelling or coordinates must not move another's."""
    near = florist(id="ACC-2", name="Bloom Room", place=replace(MINNEAPOLIS, lat=44.95, lon=-93.30))
    other_metro = florist(id="ACC-3", name="Stem", place=replace(MINNEAPOLIS, city="minneapolis", metro="Metro"))
    store.upsert_businesses([florist(), near, other_metro], T0)
    assert store.get_business("ACC-1").record == florist()
    assert store.get_business("ACC-2").record == near
    assert store.get_business("ACC-3").record == other_metro
    assert store.upsert_businesses([florist(), near, other_metro], T1) == [UpsertOutcome.UNCHANGED] * 3
    assert store.stats().places == 1, "still one place for the city"


def test_optional_fields_round_trip_as_empty(store):
    bare = business("ACC-2", "Bare Minimum LLC")
    store.upsert_businesses([bare], T0)
    assert store.get_business("ACC-2").record == bare
    assert store.get_business("missing") is None


def test_rewriting_the_same_record_is_unchanged_and_touches_nothing(store):
    store.upsert_businesses([florist()], T0)
    assert store.upsert_businesses([florist()], T1) == [UpsertOutcome.UNCHANGED]
    assert store.get_business("ACC-1").updated_at == T0


def test_an_update_replaces_fields_categories_place_and_salesperson(store):
    store.upsert_businesses([florist()], T0)
    changed = florist(
        name="Petal & Stem Studio",
        email=None,
        employees=None,
        categories=("Florist",),
        place=AUSTIN,
        salesperson_id="ken@example.com",
    )
    assert store.upsert_businesses([changed], T1) == [UpsertOutcome.UPDATED]
    stored = store.get_business("ACC-1")
    assert stored.record == changed
    assert (stored.created_at, stored.updated_at) == (T0, T1)
    counts = {s.salesperson.id: s.business_count for s in store.list_salespeople()}
    assert counts == {"dana@example.com": 0, "ken@example.com": 1}


def test_outcomes_follow_input_order_in_a_mixed_batch(store):
    store.upsert_businesses([business("A", "Alpha"), business("B", "Beta")], T0)
    outcomes = store.upsert_businesses([business("C", "Gamma"), business("A", "Alpha"), business("B", "Beta Two")], T1)
    assert outcomes == [UpsertOutcome.CREATED, UpsertOutcome.UNCHANGED, UpsertOutcome.UPDATED]


def test_a_failing_batch_writes_nothing(store, backend):
    """The third record fails in the database itself (SQLite cannot bind a list; the Neo4j server
    refuses to store a list holding null) after the first two were written in the same
    transaction: none of them stays."""
    store.upsert_businesses([business("A", "Alpha")], T0)
    poisoned = [business("A", "Alpha renamed"), business("B", "Beta"), business("C", "Gamma", description=["a", None])]
    with pytest.raises((sqlite3.Error, Neo4jError)) as caught:
        store.upsert_businesses(poisoned, T1)
    if backend == "neo4j":  # the server answered, not the driver
        assert caught.value.code.startswith("Neo.ClientError."), caught.value.code
    assert store.get_business("A").record.name == "Alpha"
    assert store.get_business("B") is None
    assert store.count_businesses() == 1
    assert [(c.business_id, c.version) for c in store.pending_changes()] == [("A", 1)], "nothing else was marked"


def test_a_unit_of_work_lands_whole_or_not_at_all(store):
    store.upsert_businesses([business("A", "Alpha"), business("B", "Beta")], T0)
    before = store.pending_changes()

    def work(tx):
        tx.add_ties([Tie("A", "B")], T1)
        tx.add_do_not_introduce("A", "B", "owners fell out", T1)
        raise RuntimeError("the use case changed its mind")

    with pytest.raises(RuntimeError):
        store.write(work)
    assert store.ties_of("A") == [] and not store.is_do_not_introduce("A", "B")
    assert store.pending_changes() == before

    def both(tx):
        tx.add_ties([Tie("A", "B")], T1)
        return tx.add_do_not_introduce("A", "B", "owners fell out", T1)

    assert store.write(both) is True
    assert store.ties_of("A") == [Tie("A", "B")] and store.is_do_not_introduce("A", "B")


def test_listing_orders_by_name_and_filters_and_pages(store):
    store.upsert_businesses(
        [
            business("1", "zephyr Coffee"),
            business("2", "Acme Plumbing", salesperson_id="ken@example.com"),
            business("3", "Bakehouse on Grand"),
            business("4", "Grand Avenue Bridal"),
        ],
        T0,
    )
    names = [b.record.name for b in store.list_businesses()]
    assert names == ["Acme Plumbing", "Bakehouse on Grand", "Grand Avenue Bridal", "zephyr Coffee"]
    assert [b.id for b in store.list_businesses(search="GRAND")] == ["3", "4"]
    assert [b.id for b in store.list_businesses(salesperson_id="ken@example.com")] == ["2"]
    assert [b.id for b in store.list_businesses(limit=2, offset=1)] == ["3", "4"]
    assert store.count_businesses() == 4
    assert store.count_businesses(search="grand") == 2
    assert store.count_businesses(salesperson_id="dana@example.com", search="coffee") == 1
    assert store.list_businesses(search="100%") == []


def test_listing_filters_by_kind_city_and_change_time_and_pages_by_a_key(store):
    store.upsert_businesses(
        [
            business("1", "Éclair Bakery", categories=("Bakery",), place=MINNEAPOLIS),
            business("2", "acme Plumbing", categories=("Plumber",), place=AUSTIN),
            business("3", "Acme Plumbing", categories=("Plumber", "Bakery"), place=MINNEAPOLIS),
        ],
        T0,
    )
    store.upsert_businesses([business("4", "Bloom", place=AUSTIN)], T1)
    store.save_inferred_categories(["4"], [InferredCategory("4", "Florist", 0.7)])
    assert [b.id for b in store.list_businesses(category="bakery")] == ["3", "1"]
    assert [b.id for b in store.list_businesses(category="Florist")] == ["4"]  # inferred kinds count too
    assert [b.id for b in store.list_businesses(city="AUSTIN")] == ["2", "4"]
    assert store.count_businesses(category="Plumber", city="minneapolis") == 1
    assert [b.id for b in store.list_businesses(updated_since=T1)] == ["4"]
    assert store.count_businesses(updated_since=T0 + timedelta(seconds=1)) == 1
    everything = [b.id for b in store.list_businesses()]
    paged, after = [], None
    while page := store.list_businesses(after=after, limit=1):
        paged.append(page[0].id)
        after = (page[0].record.name, page[0].id)
    assert paged == everything and len(paged) == 4  # equal names ("acme", "Acme") ordered by id


def test_api_tokens_are_kept_by_the_hash_of_their_secret_and_revoked_once(store):
    store.upsert_salespeople([Salesperson("dana@example.com", "Dana")])
    token = ApiToken("a1b2c3d4e5f6", "CRM sync", (TokenScope.READ, TokenScope.WRITE), T0, "dana@example.com", "system")
    store.write(lambda tx: tx.create_api_token(token, "hash-1"))
    assert store.api_token_by_hash("hash-1") == token
    assert store.api_token_by_hash("hash-2") is None
    with pytest.raises(UnknownSalespersonError):
        store.write(lambda tx: tx.create_api_token(replace(token, id="x", salesperson_id="nobody"), "hash-3"))
    assert store.write(lambda tx: tx.revoke_api_token(token.id, T1)) is True
    assert store.write(lambda tx: tx.revoke_api_token(token.id, T1)) is False
    assert store.list_api_tokens() == [replace(token, revoked_at=T1)]


def test_salespeople_are_read_in_one_go(store):
    store.upsert_salespeople([Salesperson("dana@example.com", "Dana"), Salesperson("ken@example.com", "Ken")])
    found = store.get_salespeople(["ken@example.com", "nobody", "dana@example.com", "ken@example.com"])
    assert found == {"dana@example.com": Salesperson("dana@example.com", "Dana"),
                     "ken@example.com": Salesperson("ken@example.com", "Ken")}  # fmt: skip
    assert store.get_salespeople([]) == {}


def test_salespeople_are_upserted_and_listed_with_their_counts(store):
    store.upsert_salespeople([Salesperson("dana@example.com", "Dana W", "dana@example.com")])
    store.upsert_salespeople([Salesperson("dana@example.com", "Dana Whitfield", "dana@example.com")])
    store.upsert_businesses([business("1", "One"), business("2", "Two")], T0)
    [summary] = store.list_salespeople()
    assert summary.salesperson == Salesperson("dana@example.com", "Dana Whitfield", "dana@example.com")
    assert summary.business_count == 2


def test_ties_are_undirected_idempotent_and_listed_from_both_ends(store):
    store.upsert_businesses([business("A", "Alpha"), business("B", "Beta"), business("C", "Gamma")], T0)
    created = store.add_ties(
        [Tie("B", "A", TieKind.PARTNERS_WITH), Tie("A", "B", TieKind.PARTNERS_WITH), Tie("A", "C")], T0
    )
    assert created == 2
    assert store.add_ties([Tie("A", "B", TieKind.PARTNERS_WITH)], T1) == 0
    assert store.ties_of("A") == [Tie("A", "B", TieKind.PARTNERS_WITH), Tie("A", "C", TieKind.KNOWS)]
    assert store.ties_of("B") == [Tie("A", "B", TieKind.PARTNERS_WITH)]
    assert store.stats().ties == 2


def test_a_tie_to_an_unknown_business_writes_nothing(store):
    store.upsert_businesses([business("A", "Alpha"), business("B", "Beta")], T0)
    with pytest.raises(UnknownBusinessError) as caught:
        store.add_ties([Tie("A", "B"), Tie("A", "ghost")], T0)
    assert caught.value.ids == ["ghost"]
    assert store.ties_of("A") == []


def test_do_not_introduce_pairs(store):
    store.upsert_businesses([business("A", "Alpha"), business("B", "Beta"), business("C", "Gamma")], T0)
    assert store.add_do_not_introduce("B", "A", "owners had a falling out", T0) is True
    assert store.add_do_not_introduce("A", "B", "again", T1) is False
    assert store.is_do_not_introduce("A", "B") and store.is_do_not_introduce("B", "A")
    assert not store.is_do_not_introduce("A", "C")
    with pytest.raises(UnknownBusinessError):
        store.add_do_not_introduce("A", "ghost", "", T0)
    assert store.stats().opted_out_pairs == 1


def test_stats_count_what_the_graph_holds(store):
    store.upsert_businesses(
        [florist(), business("B", "Beta", categories=("Florist",), place=AUSTIN), business("C", "Gamma")], T0
    )
    stats = store.stats()
    assert (stats.businesses, stats.salespeople, stats.categories, stats.places) == (3, 1, 2, 2)
    assert stats.by_category == {"Florist": 2, "Event Decor": 1}


def test_introductions_move_one_step_at_a_time_from_the_version_read(store):
    store.upsert_businesses([florist(), business("V1", "Lakeside Venue", place=MINNEAPOLIS), business("X", "X")], T0)
    proposed = IntroStep(IntroStatus.PROPOSED, T0, "dana@example.com")
    intro = Introduction("i1", "ACC-1", "V1", IntroStatus.PROPOSED, T0, "dana@example.com", "Hi A", "Hi B", 0.5,
                         (proposed,))  # fmt: skip
    store.write(lambda tx: tx.create_introduction(intro))
    assert store.get_introduction("i1") == intro
    asked = IntroStep(IntroStatus.ASKED, T1, "dana@example.com", "emailed both")
    assert store.write(lambda tx: tx.advance_introduction("i1", 1, asked)) is True
    assert store.write(lambda tx: tx.advance_introduction("i1", 1, asked)) is False  # moved since version 1
    assert store.write(lambda tx: tx.advance_introduction("nope", 0, asked)) is False
    # Messages change only from the version read (and not at all for an unknown id).
    assert store.write(lambda tx: tx.edit_introduction_messages("i1", 1, "New A", "New B")) is False
    assert store.write(lambda tx: tx.edit_introduction_messages("nope", 2, "New A", "New B")) is False
    assert store.write(lambda tx: tx.edit_introduction_messages("i1", 2, "New A", "New B")) is True
    assert (store.get_introduction("i1").message_a, store.get_introduction("i1").message_b) == ("New A", "New B")
    rating = IntroFeedback("V1", 5, "great fit", T1, "dana@example.com")
    store.write(lambda tx: tx.add_introduction_feedback("i1", rating))
    store.write(lambda tx: tx.add_introduction_feedback("i1", replace(rating, business_id="ACC-1", rating=4)))
    stored = store.get_introduction("i1")
    assert stored.status is IntroStatus.ASKED and stored.steps == (proposed, asked)
    assert [f.rating for f in stored.feedback] == [5, 4] and stored.updated_at == T1
    with pytest.raises(UnknownBusinessError):
        store.write(lambda tx: tx.create_introduction(replace(intro, id="i2", b_id="NOPE")))
    other = replace(intro, id="i3", a_id="X", created_at=T1, steps=(replace(proposed, at=T1),))
    store.write(lambda tx: tx.create_introduction(other))
    assert [i.id for i in store.list_introductions()] == ["i3", "i1"]  # newest first
    assert [i.id for i in store.list_introductions(business_id="ACC-1")] == ["i1"]
    assert [i.id for i in store.list_introductions(status=IntroStatus.ASKED)] == ["i1"]
    assert [i.id for i in store.list_introductions(salesperson_id="dana@example.com", limit=1)] == ["i3"]
    assert store.list_introductions(salesperson_id="ken@example.com") == []
    # When each side was last introduced (either side, any status); none for a business never introduced.
    assert store.last_introduced(["ACC-1", "V1", "X", "NOPE"]) == {"ACC-1": T0, "V1": T1, "X": T1}
    assert store.last_introduced([]) == {}
    # Accounts gone without: never introduced first, then the longest waiting; only active ones.
    store.upsert_businesses([business("N", "Newcomer"), business("Z", "Zed")], T1)
    store.write(lambda tx: tx.set_archived(["Z"], True, T1))
    total, gaps = store.introduction_gaps("dana@example.com", T1 + timedelta(days=1), 10)
    assert [(g.business_id, g.last_introduced) for g in gaps] == [("N", None), ("ACC-1", T0), ("V1", T1), ("X", T1)]
    assert total == 4 and gaps[0].name == "Newcomer" and gaps[0].created_at == T1
    total, gaps = store.introduction_gaps(None, T1 + timedelta(days=1), 2)  # the count is of all, not the first
    assert total == 4 and [g.business_id for g in gaps] == ["N", "ACC-1"]
    assert [g.business_id for g in store.introduction_gaps(None, T1, 10)[1]] == ["N", "ACC-1"]
    assert store.introduction_gaps("ken@example.com", T1, 10) == (0, [])


def test_an_idempotency_key_is_claimed_once_answered_then_replayed_and_expires(store):
    first = IdempotentRequest("tok", "key-1", "fp-a", T0)
    assert store.write(lambda tx: tx.claim_idempotency_key(first, T0 - timedelta(days=1))) is None
    pending = store.write(lambda tx: tx.claim_idempotency_key(replace(first, fingerprint="fp-b"), T0))
    assert pending == first  # unanswered: the caller is told to wait
    store.write(lambda tx: tx.complete_idempotency_key("tok", "key-1", 201, '{"id": 1}', [("Location", "/x")]))
    answered = store.write(lambda tx: tx.claim_idempotency_key(first, T0))
    assert (answered.status, answered.body, answered.headers) == (201, '{"id": 1}', (("Location", "/x"),))
    assert store.write(lambda tx: tx.claim_idempotency_key(replace(first, token_id="other"), T0)) is None
    store.write(lambda tx: tx.release_idempotency_key("tok", "key-1"))  # answered: kept
    assert store.write(lambda tx: tx.claim_idempotency_key(first, T0)).status == 201
    later = replace(first, created_at=T1)
    assert store.write(lambda tx: tx.claim_idempotency_key(later, T1)) is None  # expired: claimed anew
    store.write(lambda tx: tx.release_idempotency_key("tok", "key-1"))
    assert store.write(lambda tx: tx.claim_idempotency_key(later, T0)) is None  # released: runs again


def test_webhooks_and_their_delivery_log(store):
    hook = WebhookSubscription("w1", "https://crm.example/hooks", (WebhookEvent.REFRESH_FINISHED,), "whsec_x", T0,
                               "system", "dana@example.com", "CRM")  # fmt: skip
    store.write(lambda tx: tx.create_webhook(hook))
    assert store.get_webhook("w1") == hook and store.list_webhooks() == [hook]
    first = WebhookDelivery("msg_1", "w1", WebhookEvent.REFRESH_FINISHED, '{"a": 1}', T0, next_attempt_at=T0)
    second = replace(first, id="msg_2", created_at=T1, next_attempt_at=T1)
    store.write(lambda tx: tx.add_deliveries([first, second]))
    assert store.get_delivery("msg_1") == first
    assert [d.id for d in store.list_deliveries(subscription_id="w1")] == ["msg_2", "msg_1"]  # newest first
    assert [d.id for d in store.list_deliveries(due_before=T0)] == ["msg_1"]
    failed = replace(first, status=DeliveryStatus.FAILED, attempts=3, last_attempt_at=T1, last_status=500,
                     last_error="HTTP 500", next_attempt_at=None)  # fmt: skip
    store.write(lambda tx: tx.update_delivery(failed))
    assert store.get_delivery("msg_1") == failed
    assert [d.id for d in store.list_deliveries(status=DeliveryStatus.FAILED)] == ["msg_1"]
    assert store.list_deliveries(due_before=T1 + timedelta(days=1)) == [second]
    assert store.write(lambda tx: tx.disable_webhook("w1", T1)) is True
    assert store.write(lambda tx: tx.disable_webhook("w1", T1)) is False
    assert store.list_webhooks() == [] and store.list_webhooks(active=False)[0].disabled_at == T1
