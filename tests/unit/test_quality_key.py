"""bench-quality's answer key: every entry sourced, and labels that follow the key's rules."""

from __future__ import annotations

import yaml

from bench.quality.key import BOOKS, load_truth


def key() -> dict:
    return yaml.safe_load((BOOKS / "spheres.yaml").read_text(encoding="utf-8"))


def test_every_sphere_names_two_kinds_of_the_books_and_says_where_it_was_published():
    kinds = {b["kind"] for b in yaml.safe_load((BOOKS / "tidy.yaml").read_text(encoding="utf-8"))["businesses"]}
    spheres = key()["spheres"]
    assert len({s["id"] for s in spheres}) == len(spheres), "ids are unique"
    for sphere in spheres:
        assert len(set(sphere["kinds"]) & kinds) >= 2, sphere["id"]
        assert sphere["source"].startswith("http") and sphere["quote"], sphere["id"]
        if sphere.get("round") == 2:
            assert set(sphere["kinds"]) <= kinds and sphere["query"], sphere["id"]
    for section in ("competing_kinds", "contested_kinds", "noted_competition"):
        for entry in key()[section]:
            assert len(set(entry["kinds"]) & kinds) == 2 and entry["source"].startswith("http"), entry


def test_competing_and_contested_pairs_are_never_good_even_when_a_sphere_lists_them():
    truth, spheres = load_truth("tidy"), key()
    ids = {s["id"] for s in spheres["spheres"]}
    good = {frozenset((truth.by_id[a].kind, truth.by_id[b].kind)) for a in truth.partners for b in truth.partners[a]}
    for entry in spheres["competing_kinds"] + spheres["contested_kinds"]:
        assert frozenset(entry["kinds"]) not in good, entry
    for entry in spheres["contested_kinds"]:
        assert entry["spheres"] and set(entry["spheres"]) <= ids, "contested: a sphere lists the pair"
        assert all(set(entry["kinds"]) <= set(s["kinds"]) for s in spheres["spheres"] if s["id"] in entry["spheres"])


def test_the_first_search_alone_leaves_out_what_the_second_added_and_contested():
    first, both, spheres = load_truth("tidy", rounds=(1,)), load_truth("tidy"), key()

    def pairs(round_: int) -> set[frozenset[str]]:
        return {frozenset((a, b)) for s in spheres["spheres"] if s.get("round", 1) == round_
                for a in s["kinds"] for b in s["kinds"] if a != b}  # fmt: skip

    first_pairs, added = pairs(1), pairs(2) - pairs(1)
    contested = {frozenset(entry["kinds"]) for entry in spheres["contested_kinds"]}
    assert first.good_kinds == first_pairs, "round 1 alone: its spheres, nothing contested"
    assert added - contested <= both.good_kinds and not added & first.good_kinds
    assert contested & first_pairs and not contested & both.good_kinds, "a pair the first search had, contested later"
    assert first.competing_kinds < both.competing_kinds
