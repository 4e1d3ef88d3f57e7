"""The matching engine, signal by signal, with the real model, on both backends."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from graph import BusinessRecord, Place, Tie, TieKind
from graph.records import DismissReason, Feedback, FeedbackKind, GenerationKind
from netweave.matching.embedder import refresh_embeddings
from netweave.matching.refresh import Matcher
from netweave.matching.settings import MatchSettings, Weights
from netweave.services import matches
from netweave.services.access import NotFound, Viewer

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
MPLS = Place("Minneapolis", "MN", "US", "Twin Cities", 44.98, -93.27)
STP = Place("Saint Paul", "MN", "US", "Twin Cities", 44.95, -93.09)
AUSTIN = Place("Austin", "TX", "US", "Austin", 30.27, -97.74)


def biz(business_id, name, kind, description, *, customers="", needs="", place=MPLS, **more) -> BusinessRecord:
    categories = (kind,) if kind else ()
    return BusinessRecord(
        business_id, name, "dana@example.com", description, customers, needs, categories=categories, place=place, **more
    )


FLORIST = biz(
    "F1", "Petal & Stem", "Florist", "Wedding and event flowers, bouquets and centerpieces",
    customers="engaged couples and event planners", needs="referrals from wedding venues",
)  # fmt: skip
FLORIST_2 = biz(
    "F2", "Bloom Room", "Florist", "Custom bouquets and floral arrangements for weddings",
    customers="brides and grooms", place=STP,
)  # fmt: skip
VENUE = biz(
    "V1", "Lakeside Venue", "Wedding Venue", "Lakeside event space hosting 80 weddings a year",
    customers="engaged couples", needs="a florist to recommend to our couples",
)  # fmt: skip
REALTOR = biz(
    "R1", "Olson Realty", "Real Estate Agent", "Helps first-time buyers find and buy homes",
    customers="home buyers and sellers", needs="a lender who pre-approves buyers fast",
)  # fmt: skip
LENDER = biz(
    "M1", "Keystone Lending", "Mortgage Broker", "Mortgages and pre-approvals for home buyers",
    customers="home buyers", needs="realtor referrals",
)  # fmt: skip
FAR_ACCOUNTANT = biz(  # works remotely, 1,700 km from Minneapolis
    "A1", "Ledgerline CPA", "Accounting Firm", "Tax and accounting for small businesses",
    customers="small business owners", needs="business lawyer referrals", place=AUSTIN,
)  # fmt: skip
LAWYER = biz(
    "L1", "Hughes Law", "Business Law Firm", "Business formation, contracts and leases",
    customers="founders and small business owners", needs="accountant referrals",
)  # fmt: skip
PAINTER = biz("P1", "Fresh Coat Painting", "Painter", "Interior and exterior house painting", customers="homeowners")


def ids(store, business_id):
    return [s.other_id for s in store.suggestions_for(business_id)]


def load(store, *records):
    store.upsert_businesses(list(records), T0)


def test_complementary_businesses_are_suggested_with_reasons_for_both_sides(store, matcher):
    load(store, FLORIST, VENUE)
    report = matcher.refresh_all(now=T0)
    assert report.refreshed == 2 and report.suggestions == 2
    [suggestion] = store.suggestions_for("F1")
    assert suggestion.other_id == "V1" and suggestion.rank == 1
    assert suggestion.computed_at == T0
    assert suggestion.reasons[0] == (
        "Lakeside Venue can send Petal & Stem a steady stream of couples who have just booked their wedding."
    )
    assert "Petal & Stem can send Lakeside Venue couples planning their flowers" in suggestion.other_reasons[0]
    assert "Both are in the Twin Cities area." in suggestion.reasons
    [back] = store.suggestions_for("V1")
    assert back.score == suggestion.score, "a pair scores the same from both sides"


def test_two_competitors_are_never_suggested(store, matcher):
    load(store, FLORIST, FLORIST_2, VENUE)
    matcher.refresh_all(now=T0)
    assert ids(store, "F1") == ["V1"]
    assert ids(store, "F2") == ["V1"]
    assert set(ids(store, "V1")) == {"F1", "F2"}


def test_competitors_are_caught_from_text_when_categories_are_missing(store, matcher):
    load(
        store,
        replace(FLORIST, categories=()),
        replace(FLORIST_2, categories=("Services",)),
        VENUE,
    )
    matcher.refresh_all(now=T0)
    inferred = store.inferred_categories()
    assert inferred["F1"][0].category == "Florist" and inferred["F2"][0].category == "Florist"
    assert 0.25 <= inferred["F1"][0].confidence <= 1
    assert "F2" not in ids(store, "F1") and "F1" not in ids(store, "F2")
    [to_venue] = store.suggestions_for("F1")
    assert "Petal & Stem reads like a Florist from its description" in " ".join(to_venue.other_reasons)


def test_plain_lookalikes_of_unrelated_kinds_are_not_paired(store, matcher):
    twin = biz("F3", "Petal and Stem Two", "", FLORIST.description, customers=FLORIST.customers)
    load(store, FLORIST, twin)
    matcher.refresh_all(now=T0)
    assert ids(store, "F1") == [] and ids(store, "F3") == []


def test_an_opted_out_pair_and_an_opted_out_customer_never_appear(store, matcher):
    second_venue = replace(VENUE, id="V2", name="Summit Barn", place=STP)
    shy = replace(FLORIST_2, opted_out=True)
    load(store, FLORIST, VENUE, second_venue, shy)
    store.add_do_not_introduce("F1", "V1", "owners fell out", T0)
    matcher.refresh_all(now=T0)
    assert ids(store, "F1") == ["V2"]
    assert "F1" not in ids(store, "V1")
    assert ids(store, "F2") == []
    assert all("F2" not in ids(store, b) for b in ("V1", "V2", "F1"))


def test_existing_ties_are_never_suggested(store, matcher):
    load(store, REALTOR, LENDER, FLORIST, VENUE)
    store.add_ties([Tie("R1", "M1", TieKind.KNOWS), Tie("F1", "V1", TieKind.PARTNERS_WITH)], T0)
    matcher.refresh_all(now=T0)
    assert "M1" not in ids(store, "R1") and "V1" not in ids(store, "F1")


def test_far_pairs_only_when_one_side_works_remotely(store, matcher):
    far_venue = replace(VENUE, place=AUSTIN)
    load(store, FLORIST, far_venue, FAR_ACCOUNTANT, LAWYER)
    matcher.refresh_all(now=T0)
    assert "V1" not in ids(store, "F1"), "a florist and a venue 1,700 km apart cannot work together"
    [remote] = store.suggestions_for("L1")
    assert remote.other_id == "A1"
    assert "works with clients anywhere" in remote.reasons[-1]


def test_local_partners_come_first_and_far_ones_only_bring_what_local_ones_do_not(store, embedder, rules):
    local_accountant = replace(FAR_ACCOUNTANT, id="A2", name="Northside Books CPA", place=MPLS)
    far_marketer = biz(
        "K1", "Signal Fire Marketing", "Marketing Agency", "Websites, SEO and ads for small businesses",
        customers="small business owners", needs="lawyers and accountants who refer founders", place=AUSTIN,
    )  # fmt: skip
    load(store, LAWYER, FAR_ACCOUNTANT, local_accountant, far_marketer)
    Matcher(store, embedder, rules, MatchSettings(top_n=2)).refresh_all(now=T0)
    assert ids(store, "L1") == ["A2", "K1"] or ids(store, "L1") == ["K1", "A2"], (
        "the far accountant waits: a local one is there; the far marketer adds a kind"
    )
    far = next(s for s in store.suggestions_for("L1") if s.other_id == "K1")
    assert far.reasons[-1] == "Signal Fire Marketing works with clients anywhere, so distance is no obstacle."
    Matcher(store, embedder, rules, MatchSettings(top_n=3)).refresh_all(now=T0)
    assert sorted(ids(store, "L1")) == ["A1", "A2", "K1"], "with a slot left, the far accountant fills it"


def test_competitors_are_kept_apart_even_when_a_kind_is_only_suspected(store, embedder, rules):
    unsure = replace(FLORIST_2, id="F3", categories=(), place=MPLS)  # reads like a florist, says no kind
    venue_like = biz("V3", "Harbor Hall", "", "Event space for weddings and receptions", place=MPLS)
    load(store, FLORIST, unsure, venue_like)
    # Too unsure to use any inferred kind, and no look-alike guard: only the suspected kind is left.
    careful = Weights(infer_min_confidence=1.01, lookalike_competitor=1.01, lookalike_penalty=0.0, min_score=0.0)
    Matcher(store, embedder, rules, MatchSettings(weights=careful)).refresh_all(now=T0)
    assert "F3" not in ids(store, "F1") and "F1" not in ids(store, "F3"), "a suspected florist meets no florist"
    assert "V3" in ids(store, "F1"), "a suspected venue still meets the florist"


def test_account_bookkeeping_and_shared_names_do_not_decide_a_kind(store, matcher):
    elder_law = biz("E1", "Marlowe Elder Law", "Legal Services", "Law firm. Customer since 2016. Net 30.")
    care = biz("G1", "Harborview Care Management", "Geriatric Care Manager", "Care plans for aging parents")
    detailer = biz("D1", "Gloss Theory Detailing", "", "Detailer. Met at chamber mixer. Customer since 2019.")
    body_shop = biz("B1", "Crossroads Collision", "Auto Body Shop", "Collision repair and paint after accidents")
    load(store, elder_law, care, detailer, body_shop)
    matcher.refresh_all(now=T0)
    inferred = {i: c[0].category for i, c in store.inferred_categories().items()}
    assert inferred["E1"] == "Elder Law Attorney", "'Law firm' is shared by every legal kind: the name decides"
    assert inferred["D1"] == "Auto Detailing", "how the account was met says nothing of what the business does"
    assert ids(store, "G1") == ["E1"] and ids(store, "B1") == ["D1"]
    said = [r for i in ("G1", "B1") for s in store.suggestions_for(i) for r in (*s.reasons, *s.other_reasons)]
    assert not [r for r in said if "since" in r or "chamber" in r or "Net 30" in r], said


def test_a_kind_too_unsure_to_show_still_counts_for_the_rules_by_its_probability(store, embedder, rules):
    load(store, replace(FLORIST, categories=(), needs=""), replace(VENUE, needs=""))
    scores = {}
    for rule in (0.0, 0.4):
        unsure = Weights(infer_min_confidence=1.01, rule=rule, min_score=0.0)
        Matcher(store, embedder, rules, MatchSettings(weights=unsure)).refresh_all(now=T0)
        [suggestion] = store.suggestions_for("F1")
        scores[rule] = suggestion.score
    assert "F1" not in store.inferred_categories(), "below infer_min_confidence no kind is shown"
    assert scores[0.4] > scores[0.0] + 0.1, scores
    [to_florist] = store.suggestions_for("V1")
    said = " ".join(to_florist.reasons)
    assert "Petal & Stem can send Lakeside Venue couples planning their flowers" in said, "what the kind would bring"
    assert re.search(r"Petal & Stem may be a Florist \(\d+% likely\)\.", said), "and how unsure that kind is"


def test_the_offer_text_is_what_the_business_is_not_how_the_account_is_kept(store, rules):
    from netweave.matching.embedder import field_texts

    load(
        store,
        biz("F7", "Porchlight Petals", "Florist", "Two delivery vans. Customer since 2019. Net 30."),
        biz("F8", "Porchlight Petals", "Retail", "Two delivery vans. Met at chamber mixer."),
    )
    texts = {i: field_texts(store.get_business(i), rules)["offers"] for i in ("F7", "F8")}
    assert texts["F7"] == "Porchlight Petals (Florist). Two delivery vans."
    assert texts["F8"] == "Porchlight Petals. Two delivery vans.", "a coarse industry narrows the kind instead"
    assert store.get_business("F8").record.description.endswith("Met at chamber mixer."), "stored as given"


def test_a_sparse_account_meets_its_kinds_partners_below_min_score_but_nothing_else(store, embedder, rules):
    sparse = biz("F9", "Porchlight Petals", "Florist", "")
    lender = biz("X1", "Quickbridge Cash Advance", "Payday Lender", "Cash advances for weddings and events")
    load(store, sparse, replace(VENUE, needs=""), lender)
    for related_from, expected in ((0.05, ["V1"]), (0.99, [])):
        only_related = Weights(min_score=0.99, min_related_score=related_from)
        Matcher(store, embedder, rules, MatchSettings(weights=only_related)).refresh_all(now=T0)
        assert ids(store, "F9") == expected, "the rules relate florists and venues, not payday lenders"


def test_no_two_suggestions_for_a_business_read_alike(store, matcher):
    barns = [
        biz(f"V{n}", name, "Wedding Venue", text, customers="engaged couples")
        for n, (name, text) in enumerate(
            [
                ("Summit Barn", "Event space for weddings and receptions"),
                ("Harbor Hall", "Event space for weddings and receptions"),
            ],
            start=2,
        )
    ]
    load(store, FLORIST, VENUE, *barns)
    matcher.refresh_all(now=T0)
    suggestions = store.suggestions_for("F1")
    assert len(suggestions) == 3
    shapes = [
        frozenset(r.replace(store.get_business(s.other_id).record.name, "*") for r in s.reasons) for s in suggestions
    ]
    assert len(set(shapes)) == 3, shapes
    assert (
        sum(any(r.endswith(": event space for weddings and receptions.") for r in s.reasons) for s in suggestions) == 1
    ), "a suggestion that would read like another says what that business offers"


def test_far_candidates_come_from_the_vector_index_where_there_is_one(store, matcher, monkeypatch):
    asked = []
    search = store.nearest
    monkeypatch.setattr(store, "nearest", lambda field, vectors, k: asked.append(field) or search(field, vectors, k))
    load(store, FAR_ACCOUNTANT, LAWYER)
    matcher.refresh_all(now=T0)
    assert ids(store, "L1") == ["A1"] and ids(store, "A1") == ["L1"]
    if store.has_vector_index:  # Neo4j: who offers what each needs, who needs what each offers
        assert sorted(set(asked)) == ["needs", "offers"]
    else:  # embedded: every eligible far business is estimated in memory
        assert asked == []


def test_far_candidates_asked_of_an_index_a_chunk_of_rows_at_a_time_are_the_same(store, embedder, rules, monkeypatch):
    """A full refresh asks the index (Neo4j's, or an exact scan of the book on the embedded
    store) for its rows a chunk at a time, so memory stays bounded: chunks of 3 rows find each
    row the far candidates and floors that one chunk of the whole book finds."""
    from netweave.matching import search

    lawyers = [replace(LAWYER, id=f"L{n}", name=f"Hughes Law {n}") for n in range(8)]
    accountants = [replace(FAR_ACCOUNTANT, id=f"A{n}", name=f"Ledgerline CPA {n}") for n in range(8)]
    load(store, *lawyers, *accountants, FLORIST, VENUE, REALTOR, LENDER)
    refresh_embeddings(store, embedder, store.all_businesses(), rules)
    far_search = "auto" if store.has_vector_index else "memory"
    settings = replace(MatchSettings(), index_neighbours=4)  # few enough that floors are set
    book = Matcher(store, embedder, rules, settings, far_search=far_search).load_book(T0)
    rows = book.active_rows()
    whole = book.far_candidates(rows)
    assert (whole.columns >= 0).sum() >= 16 and np.isfinite(whole.needs_floor).sum() >= 16
    monkeypatch.setattr(search, "_INDEX_ROWS_PER_STEP", 3)
    chunked = book.far_candidates(rows)
    for name in ("columns", "floor", "needs_floor", "offers_floor"):
        assert np.array_equal(getattr(chunked, name), getattr(whole, name)), name


def test_nearby_cities_in_other_markets_count_within_max_km(store, matcher):
    suburb = Place("Stillwater", "MN", "US", "", 45.06, -92.81)  # ~40 km from Minneapolis, no metro given
    load(store, FLORIST, replace(VENUE, place=suburb))
    matcher.refresh_all(now=T0)
    [nearby] = store.suggestions_for("F1")
    assert nearby.other_id == "V1" and nearby.reasons[-1].endswith("km apart.")


def test_needs_are_matched_to_offers_by_meaning(store, matcher):
    cowork = biz(
        "C1", "The Hive", "Coworking Space", "Desks and meeting rooms for freelancers",
        needs="a photographer for member headshots and event photos",
    )  # fmt: skip
    photographer = biz("PH", "Golden Hour Photo", "", "Portrait, headshot and event photography")
    groomer = biz("DG", "Suds & Scissors", "", "Dog grooming, baths and nail trims")
    load(store, cowork, photographer, groomer)
    matcher.refresh_all(now=T0)
    suggestions = store.suggestions_for("C1")
    assert [s.other_id for s in suggestions][:1] == ["PH"]
    assert "DG" not in [s.other_id for s in suggestions]
    assert suggestions[0].reasons[0].startswith("The Hive wants a photographer for member headshots")


def test_specific_pair_rules_outrank_a_shared_sphere(store, matcher):
    load(store, REALTOR, LENDER, PAINTER)
    matcher.refresh_all(now=T0)
    suggestions = store.suggestions_for("R1")
    assert [s.other_id for s in suggestions] == ["M1", "P1"]
    assert suggestions[0].score > suggestions[1].score
    assert (
        suggestions[0].reasons[0] == "Keystone Lending can send Olson Realty pre-approved buyers ready to make offers."
    )
    assert "Fresh Coat Painting (Painter) and Olson Realty serve the same home buying customers." in (
        suggestions[1].reasons
    )


def test_two_sided_pairs_rank_above_one_sided_ones(store, matcher):
    eager = replace(VENUE, id="V1", needs="a florist to recommend to our couples")
    indifferent = replace(VENUE, id="V2", name="Summit Barn", needs="", customers="")
    needy = replace(FLORIST, needs="a florist partner", id="F1")  # wants what it already is: no fit with venues
    load(store, needy, eager, indifferent)
    matcher.refresh_all(now=T0)
    [first, second] = store.suggestions_for("F1")
    assert (first.other_id, second.other_id) == ("V1", "V2")


def test_shared_partners_raise_a_pair_and_are_explained(store, matcher):
    planner = biz("W1", "Something Blue Planning", "Wedding Planner", "Wedding planning and coordination")
    twin = replace(VENUE, id="V2")  # the same texts (the name is one of them): the same score but for partners
    load(store, FLORIST, VENUE, twin, planner)
    store.add_ties([Tie("F1", "W1", TieKind.PARTNERS_WITH), Tie("V1", "W1", TieKind.PARTNERS_WITH)], T0)
    matcher.refresh_all(now=T0)
    by_other = {s.other_id: s for s in store.suggestions_for("F1")}
    assert by_other["V1"].score == pytest.approx(by_other["V2"].score + 0.05, abs=1e-3)
    assert "Both already work with Something Blue Planning." in by_other["V1"].reasons
    load(store, replace(planner, salesperson_id="ken@example.com"))  # now another salesperson's customer
    matcher.refresh_changes(now=T0)
    by_other = {s.other_id: s for s in store.suggestions_for("F1")}
    assert "Both already work with a partner in common." in by_other["V1"].reasons, "not named to Dana"
    between_dana_s = [s for s in store.all_suggestions() if "W1" not in (s.business_id, s.other_id)]
    assert not any("Something Blue" in reason for s in between_dana_s for reason in s.reasons + s.other_reasons)


def test_dismissals_remove_the_pair_and_teach_both_sides(store, matcher):
    second_florist = replace(FLORIST_2, place=MPLS)
    other_venue = replace(VENUE, id="V2", name="Summit Barn", place=STP)
    load(store, FLORIST, second_florist, VENUE, other_venue)
    matcher.refresh_all(now=T0)
    before = {(s.business_id, s.other_id): s.score for s in store.all_suggestions()}
    store.record_feedback(Feedback("F1", "V1", FeedbackKind.DISMISSED, T0, DismissReason.NOT_RELEVANT, "dana"))
    matcher.refresh_all(now=T0)
    assert "V1" not in ids(store, "F1")
    after = {(s.business_id, s.other_id): s.score for s in store.all_suggestions()}
    assert after[("F1", "V2")] < before[("F1", "V2")], "venues count for less for this florist"
    assert after[("V1", "F2")] < before[("V1", "F2")], "florists count for less for this venue"
    assert after[("F2", "V2")] == before[("F2", "V2")], "other florists and venues are not affected"
    store.record_feedback(Feedback("F1", "V1", FeedbackKind.DISMISSED, T0, DismissReason.NOT_RELEVANT, "dana"))
    matcher.refresh_all(now=T0)
    again = {(s.business_id, s.other_id): s.score for s in store.all_suggestions()}
    assert again == after, "the same salesperson's repeated verdict counts once"


def test_accepted_intros_lift_their_kind_pair_and_are_not_suggested_again(store, matcher):
    load(store, REALTOR, LENDER, replace(LENDER, id="M2", name="North Loop Loans"))
    matcher.refresh_all(now=T0)
    before = {s.other_id: s.score for s in store.suggestions_for("R1")}
    store.record_feedback(Feedback("R1", "M1", FeedbackKind.INTRO_ACCEPTED, T0))
    matcher.refresh_all(now=T0)
    after = {s.other_id: s.score for s in store.suggestions_for("R1")}
    assert "M1" not in after
    assert after["M2"] > before["M2"]


def test_bad_timing_hides_a_pair_for_a_while_only(store, matcher):
    load(store, FLORIST, VENUE)
    store.record_feedback(Feedback("F1", "V1", FeedbackKind.DISMISSED, T0, DismissReason.BAD_TIMING))
    matcher.refresh_all(now=T0 + timedelta(days=30))
    assert ids(store, "F1") == []
    matcher.refresh_all(now=T0 + timedelta(days=120))
    assert ids(store, "F1") == ["V1"]
    matcher.refresh_all(now=T0 + timedelta(days=30))
    assert matcher.due(T0 + timedelta(days=120)), "the pause ends: a refresh is due though nothing changed"
    matcher.refresh_changes(now=T0 + timedelta(days=120))
    assert ids(store, "F1") == ["V1"]


def test_lists_favour_variety_of_kinds_while_other_kinds_are_left(store, embedder, rules):
    venues = [replace(VENUE, id=f"V{n}", name=f"{place} Venue") for n, place in enumerate(("Lake", "Barn", "Loft"), 1)]
    photographer = biz(
        "PH", "Golden Hour Photo", "Wedding Photographer", "Wedding photography and engagement shoots",
        customers="engaged couples", needs="florist and venue referrals",
    )  # fmt: skip
    planner = biz(
        "PL", "Something Blue Planning", "Wedding Planner", "Full-service wedding planning and coordination",
        customers="engaged couples", needs="florists and venues to recommend",
    )  # fmt: skip
    caterer = biz(
        "CA", "Fork & Vine Catering", "Caterer", "Wedding and event catering, plated dinners and buffets",
        customers="couples and event hosts", needs="venue and planner referrals",
    )  # fmt: skip
    load(store, FLORIST, *venues, photographer, planner, caterer)

    def venues_suggested(max_per_kind: int) -> int:
        settings = MatchSettings(weights=Weights(max_per_kind=max_per_kind))
        Matcher(store, embedder, rules, settings).refresh_all(now=T0)
        suggested = ids(store, "F1")
        assert len(suggested) == 5
        return sum(other.startswith("V") for other in suggested)

    assert venues_suggested(5) == 3, "without variety the three venues outscore the caterer"
    assert venues_suggested(2) == 2, "at most two of a kind: the caterer takes the third venue's place"
    load(store, replace(caterer, opted_out=True))  # no other kind left: the third venue fills the slot
    assert venues_suggested(2) == 3


def test_feedback_refreshes_both_sides_and_already_know_records_the_tie(store, matcher, jobs):
    load(store, FLORIST, VENUE, REALTOR, LENDER)
    matcher.refresh_all(now=T0)
    assert "V1" in ids(store, "F1") and "M1" in ids(store, "R1")
    system = Viewer.system()
    matches.record_feedback(store, jobs, system, "F1", "V1", FeedbackKind.DISMISSED, DismissReason.ALREADY_KNOW, now=T0)
    assert "V1" not in ids(store, "F1"), "hidden at once, before any refresh"
    matcher.refresh_changes(now=T0)
    assert "V1" not in ids(store, "F1") and "F1" not in ids(store, "V1")
    assert Tie("F1", "V1", TieKind.KNOWS) in store.ties_of("F1")
    matches.record_feedback(store, jobs, system, "R1", "M1", FeedbackKind.INTRO_MADE, now=T0)
    matcher.refresh_changes(now=T0)
    assert "M1" not in ids(store, "R1"), "an introduced pair is not suggested again"
    assert store.ties_of("R1") == [], "only 'already know' says the two know each other"
    with pytest.raises(NotFound):
        matches.record_feedback(store, jobs, system, "R1", "ghost", FeedbackKind.DISMISSED, "not_relevant")


def test_a_text_shared_by_many_businesses_is_embedded_once(store, embedder, rules):
    load(store, VENUE, replace(VENUE, id="V2"))  # the same three texts (the name is part of the offer)
    businesses = store.list_businesses()
    stats = refresh_embeddings(store, embedder, businesses, rules, chunk=1)  # even across encoding chunks
    assert (stats.texts, stats.encoded) == (6, 3)
    ids, vectors = store.load_embeddings("offers")
    assert ids == ["V1", "V2"] and np.array_equal(vectors[0], vectors[1])


def test_refresh_reports_progress_stage_by_stage(store, matcher):
    load(store, FLORIST, VENUE, REALTOR, LENDER, LAWYER, PAINTER)  # the painter names no needs

    def stages() -> list[list]:
        seen: list[list] = []  # [stage, total, done]
        matcher.refresh_all(
            now=T0,
            on_start=lambda stage, total: seen.append([stage, total, 0]),
            on_progress=lambda done: seen[-1].__setitem__(2, seen[-1][2] + done),
        )
        return seen

    # texts (3 per business), then businesses through candidates and matching; every bar ends full,
    # also the second time, when nothing is embedded
    expected = [["embedding", 18, 18], ["candidates", 6, 6], ["matching", 6, 6]]
    assert stages() == expected
    assert stages() == expected


def test_unchanged_texts_are_never_embedded_again(store, matcher):
    load(store, FLORIST, VENUE)
    first = matcher.refresh_all(now=T0)
    assert first.embedded == 6  # offers, customers, needs for both
    assert matcher.refresh_all(now=T0).embedded == 0
    load(store, replace(VENUE, description="Barn venue for weddings and barn dances"))
    again = matcher.refresh_changes(now=T0)
    assert again.embedded == 1


def test_incremental_refresh_gives_what_a_full_refresh_gives(store, matcher):
    load(store, FLORIST, FLORIST_2, VENUE, REALTOR, LENDER, PAINTER)
    matcher.refresh_all(now=T0)
    load(store, replace(PAINTER, categories=("Florist",), description="Flowers for weddings and events"))
    matcher.refresh_changes(now=T0)
    incremental = [s.ranked() for s in store.all_suggestions()]
    matcher.refresh_all(now=T0)
    assert incremental == [s.ranked() for s in store.all_suggestions()]


def test_incremental_refresh_takes_in_new_businesses_ties_and_feedback(store, matcher):
    load(store, FLORIST, VENUE, REALTOR)
    matcher.refresh_all(now=T0)
    load(store, LENDER, replace(VENUE, id="V2", name="Summit Barn", place=AUSTIN))
    matcher.refresh_changes(now=T0)
    assert ids(store, "R1") == ["M1"]
    store.add_ties([Tie("F1", "V1", TieKind.KNOWS)], T0)
    matcher.refresh_changes(now=T0)
    assert ids(store, "F1") == []
    incremental = [s.ranked() for s in store.all_suggestions()]
    matcher.refresh_all(now=T0)
    assert incremental == [s.ranked() for s in store.all_suggestions()]


def test_a_refresh_published_by_another_process_makes_the_next_one_full(store, matcher, embedder, rules):
    """A CLI refresh takes in pending changes this worker's book never saw: the worker must not
    build on that book, or it would publish lists without them."""
    load(store, FLORIST, VENUE, REALTOR)
    matcher.refresh_all(now=T0)
    load(store, LENDER)
    elsewhere = Matcher(store, embedder, rules)  # another process
    assert elsewhere.refresh_changes(now=T0).kind is GenerationKind.FULL
    load(store, PAINTER)
    report = matcher.refresh_changes(now=T0)
    assert report.kind is GenerationKind.FULL, "its book missed the lender"
    assert "M1" in ids(store, "R1")
    assert matcher.refresh_changes(now=T0).generation is None, "then incremental again: nothing pending"
