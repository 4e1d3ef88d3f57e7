"""The complementarity rules file: coverage, lookups and clear errors for bad edits."""

from __future__ import annotations

import pytest

from netweave import demo
from netweave.matching.rules import DEFAULT_RULES_PATH, Rules, RulesError


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules.load()


def test_the_shipped_rules_cover_enough_kinds_and_spheres(rules):
    assert len(rules.kinds) >= 60
    assert len(rules.file.spheres) >= 10
    assert all(len(sphere.kinds) >= 4 for sphere in rules.file.spheres)


def test_every_demo_kind_is_a_known_kind(rules):
    assert [k.name for k in demo.KINDS if rules.kind_for(k.name) != k.name] == []


def test_crm_spellings_resolve_to_kinds(rules):
    assert rules.kind_for("realtor") == "Real Estate Agent"
    assert rules.kind_for("Flower Shop") == "Florist"
    assert rules.kind_for("CPA") == "Accounting Firm"
    assert rules.kind_for("Services") is None


def test_relations_specific_pairs_spheres_and_nothing(rules):
    pair = rules.relation("Real Estate Agent", "Mortgage Broker")
    assert pair.weight == 1.0 and pair.gets == "pre-approved buyers ready to make offers"
    assert rules.relation("Mortgage Broker", "Real Estate Agent").gets.startswith("buyers who need financing")
    sphere = rules.relation("Real Estate Agent", "Painter")
    assert sphere.gets is None and sphere.sphere == "home buying" and 0 < sphere.weight < 1
    assert rules.relation("Florist", "Auto Body Shop") is None
    assert rules.relation("Florist", None) is None


def test_competitors_are_the_same_kind_or_declared_rivals(rules):
    assert rules.competitors("Florist", "Florist")
    assert rules.competitors("Bookkeeping Service", "Accounting Firm")
    assert not rules.competitors("Florist", "Wedding Venue")
    assert rules.remote("Accounting Firm") and not rules.remote("Florist")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("Bridal Shop, Event Rental,", "Bridal Shop, Event Rentals,"), "unknown kind(s) ['Event Rentals']"),
        (("pair: [Wedding Venue, Florist]", "pair: [Wedding Venue, Flourist]"), "'gets' must name exactly the two"),
        (("    weight: 0.55\n", "    weight: 1.55\n"), "spheres.0.weight: Input should be less than or equal to 1"),
        (("kinds:\n", "kinds: [\n"), "not valid YAML"),
    ],
)
def test_a_bad_edit_is_reported_with_its_place(tmp_path, edit, message):
    broken = tmp_path / "rules.yaml"
    broken.write_text(DEFAULT_RULES_PATH.read_text().replace(*edit, 1))
    with pytest.raises(RulesError) as caught:
        Rules.load(broken)
    assert message in str(caught.value)
    assert str(broken) in str(caught.value)
