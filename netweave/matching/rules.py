"""Complementarity rules: kinds of business, the spheres they share and the pairs that refer.

Loaded from a YAML file (default `rules.yaml` beside this module; NETWEAVE_RULES_PATH
picks another) and checked with pydantic so a typo names its place in the file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.yaml")
PROTOTYPE_ALIASES = 6  # aliases per kind embedded to infer kinds


def fold(name: str) -> str:
    """Compare kind names ignoring case and punctuation: 'Realtor®' == 'realtor'."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", name.lower().replace("&", " and ")).split())


class KindRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    about: str
    naics: str | None = Field(default=None, pattern=r"^\d{2,6}$")  # NAICS 2022 code
    aliases: list[str] = []
    industries: list[str] = []  # coarse CRM industries this kind is filed under ("Retail")
    remote: bool = False
    competes_with: list[str] = []


class SphereRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    weight: float = Field(ge=0, le=1)
    kinds: list[str]
    source: str | None = None  # where the grouping was published


class PairRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pair: tuple[str, str]
    weight: float = Field(ge=0, le=1)
    gets: dict[str, str]
    source: str | None = None

    @model_validator(mode="after")
    def _gets_both_sides(self) -> PairRule:
        if self.pair[0] == self.pair[1]:
            raise ValueError(f"pair {self.pair}: a kind does not refer to itself (same kind = competitors)")
        if set(self.gets) != set(self.pair):
            raise ValueError(f"pair {list(self.pair)}: 'gets' must name exactly the two kinds of the pair")
        return self


def industries_of(kinds: list[KindRule]) -> dict[str, set[str]]:
    """Folded industry -> the kinds filed under it."""
    filed: dict[str, set[str]] = {}
    for kind in kinds:
        for industry in kind.industries:
            filed.setdefault(fold(industry), set()).add(kind.name)
    return filed


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kinds: list[KindRule]
    spheres: list[SphereRule]
    pairs: list[PairRule] = []

    @model_validator(mode="after")
    def _known_kinds(self) -> RulesFile:
        names = [k.name for k in self.kinds]
        if len(set(map(fold, names))) != len(names):
            raise ValueError("kinds: a kind is listed twice")
        filed = industries_of(self.kinds)
        spellings: dict[str, str] = {}
        for kind in self.kinds:
            for spelling in dict.fromkeys(fold(s) for s in (kind.name, *kind.aliases)):
                if spellings.setdefault(spelling, kind.name) != kind.name:
                    raise ValueError(f"kind {kind.name!r}: {spelling!r} already names {spellings[spelling]!r}")
                if filed.get(spelling, {kind.name}) != {kind.name}:
                    raise ValueError(
                        f"kind {kind.name!r}: {spelling!r} is an industry other kinds are filed under,"
                        " so it names no one kind (list it under industries only)"
                    )
        known = set(names)
        for kind in self.kinds:
            if unknown := set(kind.competes_with) - known:
                raise ValueError(f"kind {kind.name!r}: competes_with names unknown kind(s) {sorted(unknown)}")
        for sphere in self.spheres:
            if unknown := set(sphere.kinds) - known:
                raise ValueError(f"sphere {sphere.name!r}: unknown kind(s) {sorted(unknown)}")
        competing = {frozenset((k.name, other)) for k in self.kinds for other in k.competes_with}
        for pair in self.pairs:
            if unknown := set(pair.pair) - known:
                raise ValueError(f"pair {list(pair.pair)}: unknown kind(s) {sorted(unknown)}")
            if frozenset(pair.pair) in competing:
                raise ValueError(f"pair {list(pair.pair)}: the two kinds compete (competes_with)")
        return self


class RulesError(ValueError):
    pass


@dataclass(frozen=True)
class Relation:
    """How kind `a` relates to kind `b`, from a's side."""

    weight: float
    sphere: str | None  # the shared sphere, when the weight comes from one
    gets: str | None  # what a gains, when a specific pair rule says so


def _families(kinds: list[KindRule]) -> dict[str, frozenset[str]]:
    """Aliases that are, word for word, part of another kind's name or alias -> every kind they
    may mean ("dental" -> Dental Practice, Pediatric Dentist, Oral Surgeon, Periodontist)."""
    # Every run of whole words in every name and alias -> the kinds it appears in (a spelling
    # names one kind only, so a run that is another kind's whole spelling is never an alias here).
    within: dict[str, set[str]] = {}
    for k in kinds:
        for name in (k.name, *k.aliases):
            words = fold(name).split()
            for start in range(len(words)):
                for end in range(start + 1, len(words) + 1):
                    within.setdefault(" ".join(words[start:end]), set()).add(k.name)
    families: dict[str, frozenset[str]] = {}
    for k in kinds:
        for alias in map(fold, k.aliases):
            if others := within[alias] - {k.name}:
                families[alias] = frozenset({k.name, *others})
    return families


class Rules:
    def __init__(self, parsed: RulesFile):
        self.file = parsed
        self.kinds = {k.name: k for k in parsed.kinds}
        self._by_alias = {fold(alias): k.name for k in parsed.kinds for alias in (k.name, *k.aliases)}
        self._relations: dict[tuple[str, str], Relation] = {}
        for sphere in parsed.spheres:
            for a, b in itertools.permutations(dict.fromkeys(sphere.kinds), 2):
                current = self._relations.get((a, b))
                if current is None or sphere.weight > current.weight:
                    self._relations[(a, b)] = Relation(sphere.weight, sphere.name, None)
        for pair in parsed.pairs:
            a, b = pair.pair
            shared = self._relations.get((a, b))
            sphere = shared.sphere if shared else None
            self._relations[(a, b)] = Relation(pair.weight, sphere, pair.gets[a])
            self._relations[(b, a)] = Relation(pair.weight, sphere, pair.gets[b])
        self._industries = industries_of(parsed.kinds)
        self._families = _families(parsed.kinds)
        self._competitors = {(k.name, other) for k in parsed.kinds for other in k.competes_with}
        self._competitors |= {(b, a) for a, b in self._competitors}

    @classmethod
    def load(cls, path: Path | None = None) -> Rules:
        path = Path(path or DEFAULT_RULES_PATH)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls(RulesFile.model_validate(data))
        except yaml.YAMLError as error:
            raise RulesError(f"{path}: not valid YAML: {error}") from None
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in error.errors()
            )
            raise RulesError(f"{path}: {problems}") from None

    def kind_for(self, category: str) -> str | None:
        """The kind a CRM category names (by name or alias), or None if it names none."""
        return self._by_alias.get(fold(category))

    def first_kind(self, names: Sequence[str]) -> str | None:
        """The kind the first of `names` that names one outright gives (categories, then note
        fragments). A name several kinds share ("Attorney", "Photographer") gives none: see `family`."""
        return next(
            (kind for name in names if (kind := self.kind_for(name)) and fold(name) not in self._families), None
        )

    def family(self, names: Sequence[str]) -> set[str]:
        """The kinds the shared names among `names` may mean: "Law firm" is a Business Law
        Firm's alias and part of an Elder Law Firm's, so it may mean either."""
        return set().union(*(self._families.get(fold(name), ()) for name in names))

    def industry_kinds(self, category: str) -> set[str]:
        """The kinds filed under a coarse CRM industry ("Retail", "Healthcare"); empty if none."""
        return self._industries.get(fold(category), set())

    def relation(self, a: str | None, b: str | None) -> Relation | None:
        if a is None or b is None:
            return None
        return self._relations.get((a, b))

    def competitors(self, a: str | None, b: str | None) -> bool:
        """Same kind, or kinds that sell the same thing."""
        if a is None or b is None:
            return False
        return a == b or (a, b) in self._competitors

    def remote(self, kind: str | None) -> bool:
        return kind is not None and self.kinds[kind].remote

    @cached_property
    def digest(self) -> str:
        """Changes whenever the rules change (not when only comments or layout do)."""
        canonical = json.dumps(self.file.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @cached_property
    def prototypes(self) -> list[tuple[str, str]]:
        """Texts describing each kind, (kind, text), a kind's texts together in kind order:
        "Name: about", the name, and its first aliases. A business's text is compared with
        each, and a kind scores its best (a name like "…Realty" meets "Realtor")."""
        return [
            (k.name, text)
            for k in self.file.kinds
            for text in dict.fromkeys([f"{k.name}: {k.about}", k.name, *k.aliases[:PROTOTYPE_ALIASES]])
        ]

    @cached_property
    def prototype_starts(self) -> list[int]:
        """Where each kind's texts start in `prototypes` (kind order)."""
        starts, seen = [], None
        for n, (kind, _) in enumerate(self.prototypes):
            if kind != seen:
                starts.append(n)
                seen = kind
        return starts
