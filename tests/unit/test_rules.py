"""The complementarity rules file: coverage, lookups and clear errors for bad edits."""

from __future__ import annotations

import pytest

from netweave import demo
from netweave.matching.rules import Rules, RulesError


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules.load()


def test_the_shipped_taxonomy_is_broad_coded_and_sourced(rules):
    assert len(rules.kinds) >= 250
    assert [k.name for k in rules.file.kinds if not k.naics or len(k.naics) < 3] == []
    assert [k.name for k in rules.file.kinds if not k.industries] == []
    assert len(rules.file.spheres) >= 40
    assert [s.name for s in rules.file.spheres if not (s.source or "").startswith("http")] == []
    assert all(len(sphere.kinds) >= 3 for sphere in rules.file.spheres)
    in_a_sphere = {kind for sphere in rules.file.spheres for kind in sphere.kinds}
    assert len(in_a_sphere) >= 0.9 * len(rules.kinds), "a few kinds rarely refer anyone; most do"


def test_every_demo_kind_is_a_known_kind(rules):
    assert [k.name for k in demo.KINDS if rules.kind_for(k.name) != k.name] == []


def test_crm_spellings_resolve_to_kinds(rules):
    assert rules.kind_for("realtor") == "Real Estate Agent"
    assert rules.kind_for("Flower Shop") == "Florist"
    assert rules.kind_for("CPA") == "Accounting Firm"
    assert rules.kind_for("Services") is None
    assert rules.kind_for("Construction") is None, "a coarse industry names no one kind"
    assert {"Plumber", "Electrician", "General Contractor"} <= rules.industry_kinds("construction")


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
    assert rules.competitors("Tax Preparer", "Accounting Firm") and rules.competitors("Accounting Firm", "Tax Preparer")
    assert not rules.competitors("Bookkeeping Service", "Accounting Firm"), "the books and the taxes: partners"
    assert not rules.competitors("Florist", "Wedding Venue")
    assert rules.remote("Accounting Firm") and not rules.remote("Florist")


SMALL = """\
kinds:
  - {name: Florist, about: flowers, naics: "459310", aliases: [Flower Shop], industries: [Retail]}
  - {name: Wedding Venue, about: event space, naics: "531120", industries: [Events Services]}
  - {name: Flower Market, about: cut flowers, naics: "459310", competes_with: [Florist]}
spheres:
  - {name: weddings, weight: 0.55, kinds: [Florist, Wedding Venue], source: "https://example.org/spheres"}
pairs:
  - pair: [Wedding Venue, Florist]
    weight: 1.0
    gets: {Wedding Venue: "couples", Florist: "couples who booked"}
"""


def test_a_small_valid_file_loads(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(SMALL)
    rules = Rules.load(path)
    assert rules.kind_for("flower shop") == "Florist" and rules.industry_kinds("retail") == {"Florist"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("kinds: [Florist, Wedding Venue]", "kinds: [Florist, Wedding Venues]"), "unknown kind(s) ['Wedding Venues']"),
        (("pair: [Wedding Venue, Florist]", "pair: [Wedding Venue, Flourist]"), "'gets' must name exactly the two"),
        (("weight: 0.55", "weight: 1.55"), "spheres.0.weight: Input should be less than or equal to 1"),
        (("kinds:\n", "kinds: [\n"), "not valid YAML"),
        (('naics: "531120"', 'naics: "53-11"'), "kinds.1.naics: String should match pattern"),
        (("aliases: [Flower Shop]", "aliases: [Flower Shop, Wedding  venue]"), "'wedding venue' already names"),
        (("pair: [Wedding Venue, Florist]", "pair: [Flower Market, Florist]"), "the two kinds compete"),
        (("industries: [Events Services]", "aliases: [Retail], industries: [Events]"), "'retail' is an industry"),
    ],
)
def test_a_bad_edit_is_reported_with_its_place(tmp_path, edit, message):
    broken = tmp_path / "rules.yaml"
    fixed = SMALL.replace(*edit, 1)
    if "Flower Market, Florist" in fixed:
        fixed = fixed.replace("{Wedding Venue: ", "{Flower Market: ")
    broken.write_text(fixed)
    with pytest.raises(RulesError) as caught:
        Rules.load(broken)
    assert message in str(caught.value)
    assert str(broken) in str(caught.value)
