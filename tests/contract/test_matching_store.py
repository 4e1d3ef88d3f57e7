"""The store contract for what the matcher keeps: embeddings, inferred kinds, suggestions, feedback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from graph import BusinessRecord, Tie, TieKind, UnknownBusinessError
from graph.records import Feedback, FeedbackKind, InferredCategory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def three(store):
    store.upsert_businesses(
        [
            BusinessRecord("A", "Alpha", "dana@example.com", categories=("Services",)),
            BusinessRecord("B", "Beta", "dana@example.com", categories=("Florist",)),
            BusinessRecord("C", "Gamma", "dana@example.com"),
        ],
        T0,
    )
    return store


def test_embeddings_round_trip_with_their_hashes(three):
    vectors = np.random.default_rng(1).normal(size=(2, 8)).astype(np.float32)
    three.save_embeddings("offers", [("B", "h-b", vectors[1]), ("A", "h-a", vectors[0])])
    assert three.embedding_hashes("offers") == {"A": "h-a", "B": "h-b"}
    assert three.embedding_hashes("needs") == {}
    ids, matrix = three.load_embeddings("offers")
    assert ids == ["A", "B"]
    np.testing.assert_allclose(matrix, vectors, rtol=1e-6)
    some_ids, some = three.load_embeddings("offers", ["B", "C"])
    assert some_ids == ["B"]
    np.testing.assert_allclose(some, vectors[1:], rtol=1e-6)
    three.save_embeddings("offers", [("A", "h-a2", vectors[1])])
    assert three.embedding_hashes("offers")["A"] == "h-a2"
    np.testing.assert_allclose(three.load_embeddings("offers")[1][0], vectors[1], rtol=1e-6)
    with pytest.raises(ValueError, match="unknown embedding field"):
        three.embedding_hashes("shoe_size")


def test_nearest_finds_the_most_similar_vectors_first(three):
    three.ensure_vector_indexes(3)
    unit = np.eye(3, dtype=np.float32)
    between = np.array([0.8, 0.6, 0.0], dtype=np.float32)  # closer to A than to B, far from C
    three.save_embeddings("offers", [("A", "a", unit[0]), ("B", "b", between), ("C", "c", unit[2])])
    queries = np.array([[1, 0, 0], [0.1, 0, 1], [0.6, 0.8, 0]], dtype=np.float32)
    found = three.nearest("offers", queries, 2)
    assert [[i for i, _ in hits] for hits in found] == [["A", "B"], ["C", "A"], ["B", "A"]]
    assert [similarity for _, similarity in found[0]] == pytest.approx([1.0, 0.8], abs=0.005), "cosine similarities"
    three.write(lambda tx: tx.set_archived(["A"], True, datetime.now(UTC)))
    assert [i for i, _ in three.nearest("offers", queries[:1], 2)[0]] == ["A", "B"], "archived ones count too"
    assert three.nearest("needs", unit[:1], 5) == [[]], "no business has a needs vector yet"
    three.ensure_vector_indexes(5)  # another model: indexes rebuilt for its dimensions
    wider = np.eye(5, dtype=np.float32)
    three.save_embeddings("offers", [("A", "a5", wider[0]), ("B", "b5", wider[1]), ("C", "c5", wider[2])])
    assert [i for i, _ in three.nearest("offers", wider[1:2], 1)[0]] == ["B"]


def test_inferred_categories_replace_older_ones_and_leave_given_ones(three):
    three.save_inferred_categories(["A", "C"], [InferredCategory("A", "Florist", 0.8)])
    three.save_inferred_categories(
        ["A", "B"], [InferredCategory("A", "Wedding Venue", 0.6), InferredCategory("B", "Florist", 0.9)]
    )
    assert three.inferred_categories() == {"A": [InferredCategory("A", "Wedding Venue", 0.6)]}
    assert three.get_business("A").record.categories == ("Services",)
    assert three.get_business("B").record.categories == ("Florist",)


def test_a_text_that_became_empty_loses_its_vector(three):
    three.ensure_vector_indexes(4)
    vectors = np.eye(2, 4, dtype=np.float32)
    three.save_embeddings("needs", [("A", "h-a", vectors[0]), ("B", "h-b", vectors[1])])
    three.write(lambda tx: tx.delete_embeddings("needs", ["A", "ghost"]))
    assert three.embedding_hashes("needs") == {"B": "h-b"}
    assert three.load_embeddings("needs")[0] == ["B"]
    assert [i for i, _ in three.nearest("needs", vectors[:1], 5)[0]] == ["B"]


def test_feedback_is_appended_in_time_order(three):
    later = Feedback("A", "B", FeedbackKind.INTRO_ACCEPTED, T0 + timedelta(days=3), "", "dana@example.com")
    earlier = Feedback("A", "C", FeedbackKind.DISMISSED, T0, "competitor", "dana@example.com")
    three.record_feedback(later)
    three.record_feedback(earlier)
    assert three.list_feedback() == [earlier, later]
    assert three.list_feedback(["C"]) == [earlier]
    assert three.list_feedback(["B", "A"]) == [earlier, later]
    with pytest.raises(UnknownBusinessError):
        three.record_feedback(Feedback("A", "ghost", FeedbackKind.DISMISSED, T0))


def test_all_ties_and_opted_out_pairs(three):
    three.add_ties([Tie("C", "A", TieKind.PARTNERS_WITH), Tie("B", "A")], T0)
    three.add_do_not_introduce("C", "B", "", T0)
    assert three.all_ties() == [Tie("A", "B", TieKind.KNOWS), Tie("A", "C", TieKind.PARTNERS_WITH)]
    assert three.do_not_introduce_pairs() == {("B", "C")}


def test_embeddings_stream_in_batches_in_id_order(three):
    vectors = np.random.default_rng(2).normal(size=(3, 6)).astype(np.float32)
    three.save_embeddings("offers", [("C", "c", vectors[2]), ("A", "a", vectors[0]), ("B", "b", vectors[1])])
    batches = list(three.embedding_batches("offers", size=2))
    assert [ids for ids, _ in batches] == [["A", "B"], ["C"]]
    np.testing.assert_allclose(np.vstack([m for _, m in batches]), vectors, rtol=1e-6)
    assert list(three.embedding_batches("needs")) == []
