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
    truth = load_truth("tidy")
    spheres = key()
    listed = {frozenset((a, b)) for s in spheres["spheres"] for a in s["kinds"] for b in s["kinds"] if a != b}
    for section in ("competing_kinds", "contested_kinds"):
        for entry in spheres[section]:
            pair = frozenset(entry["kinds"])
            assert pair not in truth.good_kinds or pair in truth.competing_kinds, entry
            pairs = [(a, b) for a in truth.partners for b in truth.partners[a]]
            assert all(frozenset((truth.by_id[a].kind, truth.by_id[b].kind)) != pair for a, b in pairs), entry
    contested = [frozenset(entry["kinds"]) for entry in spheres["contested_kinds"]]
    assert any(pair in listed for pair in contested), "a contested pair is one some sphere lists"


def test_the_first_search_alone_is_the_key_without_round_two():
    first, both = load_truth("tidy", rounds=(1,)), load_truth("tidy")
    round_one = [s for s in key()["spheres"] if s.get("round", 1) == 1]
    assert {frozenset((a, b)) for s in round_one for a in s["kinds"] for b in s["kinds"] if a != b} == (
        first.good_kinds
    )
    assert first.competing_kinds < both.competing_kinds
    assert sum(map(len, first.partners.values())) < sum(map(len, both.partners.values()))
