"""The engine's parts that an exact incremental refresh rests on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netweave.matching.features import tiebreak_key
from netweave.matching.geography import Geography
from netweave.matching.ranking import choose_with_variety, top_k
from netweave.matching.vectors import cosine, quantize, scale_for


def test_quantized_dot_products_are_the_same_whatever_the_block():
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((3000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scale = scale_for(384)
    q = quantize(vectors, scale)
    block = q[:2000] @ q[2000:].T  # a BLAS kernel with its own summation order
    for row in (0, 17, 1999):
        alone = q[row] @ q[2000:].T
        assert np.array_equal(block[row], alone)
        assert np.array_equal(alone, np.array([float(np.dot(q[row].astype(np.int64), q[j].astype(np.int64)))
                                               for j in range(2000, 3000)], dtype=np.float32))  # fmt: skip
    approx = cosine(q[:50] @ q[50:100].T, scale)
    assert np.abs(approx - vectors[:50] @ vectors[50:100].T).max() < 5e-4, "close to the true cosine"
    assert 4000 < scale_for(384) < 4096 and 1000 < scale_for(4096) < 4096
    for d in (32, 384, 1536, 4096):  # the worst case: a flat vector with itself, every rounding upwards
        s = scale_for(d)
        worst = np.full(d, s / np.sqrt(d) + 0.5)
        assert worst @ worst < 2**24


@settings(max_examples=200, deadline=None)
@given(
    scores=st.lists(st.sampled_from([-np.inf, 0.1, 0.2, 0.2, 0.3, 0.5, 0.5, 0.5]), min_size=1, max_size=40),
    k=st.integers(1, 12),
    seed=st.integers(0, 1000),
)
def test_top_k_breaks_ties_by_key_whatever_the_order_of_candidates(scores, k, seed):
    scores = np.array(scores, dtype=np.float32)
    columns = np.arange(len(scores))
    keys = np.array([tiebreak_key(f"B{n}") for n in columns])
    chosen, chosen_scores, floor = top_k(scores[None, :], columns[None, :], keys, k)
    shuffled = np.random.default_rng(seed).permutation(len(scores))
    again, again_scores, again_floor = top_k(scores[None, shuffled], columns[None, shuffled], keys, k)
    assert np.array_equal(chosen, again) and np.array_equal(chosen_scores, again_scores) and floor == again_floor
    finite = sorted((-s, keys[c], c) for c, s in enumerate(scores) if np.isfinite(s))
    expected = [c for _, _, c in finite[:k]]
    assert chosen[0][: len(expected)].tolist() == expected and (chosen[0][len(expected) :] == -1).all()
    assert floor[0] == (scores[expected[-1]] if len(finite) >= k else -np.inf)


def test_lists_hold_at_most_two_of_a_kind_unless_nothing_else_qualifies():
    pool = [(1, 0.60), (2, 0.58), (3, 0.55), (4, 0.30), (5, 0.20)]
    kinds = [7, 7, 7, 8, 7]
    local = [False] * 5
    assert choose_with_variety(pool, kinds, local, 99, 3, 2) == [(1, 0.60), (2, 0.58), (4, 0.30)]
    assert choose_with_variety(pool, kinds, local, 99, 5, 2) == pool, "nothing else left: the rest fill in"
    assert choose_with_variety(pool, kinds, local, 99, 3, 3) == pool[:3]
    unknown = [99, 99, 99, 8, 99]
    assert choose_with_variety(pool, unknown, local, 99, 3, 2) == pool[:3], "unknown kinds are not one kind"


def test_far_entries_come_only_for_what_local_ones_do_not_bring():
    pool = [(1, 0.70), (2, 0.60), (3, 0.55), (4, 0.50), (5, 0.20)]
    kinds = [7, 8, 7, 9, 10]
    far = [True, False, False, True, False]
    # The far 7 (best by score) waits: a local 7 is in the list; the far 9 adds a kind.
    assert choose_with_variety(pool, kinds, far, 99, 4, 2) == [(2, 0.60), (3, 0.55), (4, 0.50), (5, 0.20)]
    assert choose_with_variety(pool, kinds, far, 99, 5, 2) == pool, "slots left: the far 7 fills one"


def test_near_markets_and_a_moving_centre():
    geo = Geography(max_km=60)
    mpls, stillwater, austin = geo.market("Twin Cities"), geo.market("Stillwater, MN"), geo.market("Austin")
    geo.place(0, mpls, (44.98, -93.27))
    geo.place(1, stillwater, (45.06, -92.81))
    geo.place(2, austin, (30.27, -97.74))
    assert geo.update() == {mpls, stillwater, austin}
    assert geo.near[mpls, stillwater] and geo.near[stillwater, mpls] and not geo.near[mpls, austin]
    assert not geo.near[-1, mpls] and not geo.near[-1, -1], "no market is near nothing"
    geo.place(3, stillwater, (45.60, -92.00))  # the suburb's centre moves 50 km away
    assert geo.update() == {mpls, stillwater}, "the pair whose nearness flipped"
    assert not geo.near[mpls, stillwater]
    geo.forget(3, stillwater)
    assert geo.update() == {mpls, stillwater}
    km = geo.distance_km((44.98, -93.27), (45.06, -92.81))
    assert 36 < km < 38 and km == geo.distance_km((45.06, -92.81), (44.98, -93.27))


def test_verdicts_count_once_per_person_and_older_ones_count_less():
    from datetime import UTC, datetime, timedelta

    from graph.records import DismissReason, Feedback, FeedbackKind
    from netweave.matching.eligibility import learned_factor, pair_signals
    from netweave.matching.settings import Weights

    weights = Weights(feedback_half_life_days=365)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    year_ago = now - timedelta(days=365)
    feedback = [
        Feedback("F1", "V1", FeedbackKind.INTRO_ACCEPTED, now, salesperson_id="dana"),
        Feedback("F1", "V1", FeedbackKind.INTRO_ACCEPTED, now, salesperson_id="dana"),  # repeated: once
        Feedback("V2", "F1", FeedbackKind.INTRO_ACCEPTED, year_ago, salesperson_id="ken"),  # a year older: half
        Feedback("F1", "R1", FeedbackKind.DISMISSED, now, DismissReason.NOT_RELEVANT, "dana"),
        Feedback("F1", "R2", FeedbackKind.DISMISSED, now, DismissReason.BAD_TIMING, "dana"),  # no verdict on the kind
    ]
    verdicts = pair_signals("F1", [], set(), feedback, weights).verdicts
    assert verdicts == {"V1": (1.0, 0.0), "V2": (0.5, 0.0), "R1": (0.0, 1.0)}
    # Shrunk toward 1 (the rules' weight) by two pseudo-verdicts a side, kept within 0.5..1.5.
    factor = learned_factor(np.array([1.5, 0.0, 50.0]), np.array([0.0, 1.0, 0.0]), weights)
    assert np.allclose(factor, [2 * 3.5 / 5.5, 2 * 2 / 5, 1.5])


def test_a_description_that_names_a_kind_gives_it():
    from netweave.matching.kinds import guess_kinds
    from netweave.matching.notes import fragments
    from netweave.matching.rules import Rules
    from netweave.matching.settings import Weights

    # The account's bookkeeping (billing terms, contacts) names no kind and is left out.
    assert fragments("Brewery. Taproom - Net 30; owner: Sam (prefers text)") == ["Brewery", "Taproom"]
    rules = Rules.load()
    named = [("Wine and Spirits", *fragments("Brewery. Met at chamber mixer."))]
    [guess] = guess_kinds(named, np.zeros((1, 4), np.float32), np.zeros((0, 4), np.float32), 1.0, rules, Weights())
    assert (guess.kind, guess.confidence, guess.source) == ("Brewery", 1.0, "given")


def test_account_bookkeeping_is_not_what_a_business_offers():
    from netweave.matching.notes import about_business

    assert about_business("Florist, event design. Customer since 2022. Net 30. Auto-renews annually.") == (
        "Florist, event design."
    )
    assert about_business("Met at chamber mixer. Prefers email. Follow up.") == ""
    assert about_business("Mortgage lender: FHA, jumbo. Contact: Derek (ops).") == "Mortgage lender: FHA, jumbo."
    kept = "Plumbing, drain cleaning; 24/7 line!"
    assert about_business(kept) == kept, "with nothing to leave out, kept as written"
    for fact in (
        "Bills insurance directly",
        "Imported from Italy",
        "Credit card processing for restaurants",
        "Invoice factoring for truckers",
        "Called the best BBQ in town",
        "Renewal by Andersen windows",
    ):
        assert about_business(fact) == fact, "a business's own fact, worded like bookkeeping"


def leaning_text(rules, lean: dict[str, float]) -> tuple[np.ndarray, np.ndarray, float]:
    """One offer vector, and kind prototypes whose similarity to it is `lean[kind]` (0 if not
    given), quantized as the engine keeps them."""
    prototypes = np.array(
        [[lean.get(kind, 0.0), np.sqrt(1 - lean.get(kind, 0.0) ** 2), 0, 0] for kind, _ in rules.prototypes],
        dtype=np.float32,
    )
    scale = scale_for(4)
    return quantize(np.array([[1, 0, 0, 0]], dtype=np.float32), scale), quantize(prototypes, scale), scale


def test_a_name_several_kinds_share_narrows_the_kind_without_giving_it():
    from netweave.matching.kinds import guess_kinds
    from netweave.matching.rules import Rules
    from netweave.matching.settings import Weights

    rules = Rules.load()
    assert rules.first_kind(["Law firm"]) is None, "an alias of one kind, and part of other kinds' names"
    assert rules.first_kind(["Law firm", "Elder Law Attorney"]) == "Elder Law Attorney"
    assert {"Business Law Firm", "Elder Law Attorney", "Real Estate Attorney"} <= rules.family(["Law firm"])
    assert rules.first_kind(["Florist"]) == "Florist" and rules.family(["Florist"]) == set()

    # A text a little nearer a florist than an elder law firm: "Law firm" narrows it to the law.
    offers, prototypes, scale = leaning_text(rules, {"Florist": 1.0, "Elder Law Attorney": 0.9})
    [free] = guess_kinds([()], offers, prototypes, scale, rules, Weights())
    [narrowed] = guess_kinds([("Law firm",)], offers, prototypes, scale, rules, Weights())
    assert (free.kind, narrowed.kind, narrowed.source) == ("Florist", "Elder Law Attorney", "inferred")
    assert narrowed.runner_up == "Florist" and 0.1 <= narrowed.runner_up_confidence < 0.2, "kept, with its odds"


def test_a_crm_industry_narrows_an_inferred_kind_to_the_kinds_filed_under_it():
    from netweave.matching.kinds import guess_kinds
    from netweave.matching.rules import Rules
    from netweave.matching.settings import Weights

    rules = Rules.load()
    assert rules.industry_kinds("Luxury Goods & Jewelry") == {"Jeweler"}
    assert "Jeweler" in rules.industry_kinds("Retail") and "Dermatologist" not in rules.industry_kinds("Retail")

    # A text a little nearer a dermatologist than a jeweler (a name such as "Facet & Filigree").
    offers, prototypes, scale = leaning_text(rules, {"Dermatologist": 1.0, "Jeweler": 0.95})
    free, retail, jewelry = guess_kinds(
        [(), ("Retail",), ("Luxury Goods & Jewelry",)], offers.repeat(3, axis=0), prototypes, scale, rules, Weights()
    )
    assert free.kind == "Dermatologist"
    assert retail.kind == jewelry.kind == "Jeweler", "a kind filed elsewhere keeps infer_outside_industry of its odds"
    assert retail.runner_up == "Dermatologist", "still likely enough to be kept from its competitors"


def test_the_embedding_device_is_a_gpu_when_there_is_one_and_a_bad_setting_says_so():
    import torch

    from netweave.matching.embedder import resolve_device

    gpu = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto") == gpu and resolve_device(" CPU ") == "cpu"
    with pytest.raises(ValueError, match="NETWEAVE_EMBEDDING_DEVICE: 'gpu' is not auto, cpu"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda:1' is not available on this machine"):
            resolve_device("cuda:1")


def test_the_worker_builds_its_model_with_the_configured_device_and_batch_size(tmp_path):
    from netweave.config import settings_from_env
    from netweave.matching.setup import build_matcher

    config = settings_from_env({"NETWEAVE_EMBEDDING_DEVICE": "cpu", "NETWEAVE_EMBEDDING_BATCH_SIZE": "16"})
    matcher = build_matcher(config, None)  # type: ignore[arg-type]  (the store is not touched here)
    assert (matcher.embedder.device, matcher.embedder.batch_size) == ("cpu", 16)
    with pytest.raises(ValueError, match="NETWEAVE_EMBEDDING_DEVICE"):
        build_matcher(settings_from_env({"NETWEAVE_EMBEDDING_DEVICE": "tpu"}), None)  # type: ignore[arg-type]
