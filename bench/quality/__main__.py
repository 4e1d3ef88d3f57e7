"""Match quality on a labelled evaluation set: Netweave against two baselines, one run.

    make bench-quality        (or: python -m bench.quality)

Prints precision@5 of good pairs, competitor rate in the top 5 and coverage (share of
businesses with at least one good suggestion in their top 5) for Netweave, a random
baseline and plain description-embedding similarity, with categories given and without.
Targets: precision@5 >= 2x the plain-embedding baseline, competitor rate < 1%, coverage > 95%.
"""

from __future__ import annotations

import random
import sys
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from graph import BusinessRecord, Place, StoreSettings, open_store
from netweave.matching.embedder import Embedder
from netweave.matching.refresh import Matcher
from netweave.matching.rules import Rules

EVAL_SET = Path(__file__).with_name("eval_set.yaml")
K = 5


@dataclass
class EvalSet:
    records: list[BusinessRecord]
    kind: dict[str, str]
    market: dict[str, str]
    good: set[frozenset[str]]

    def is_good(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.good

    def is_competitor(self, a: str, b: str) -> bool:
        return self.kind[a] == self.kind[b] and self.market[a] == self.market[b]


def load_eval_set(path: Path = EVAL_SET) -> EvalSet:
    data = yaml.safe_load(path.read_text())
    markets = data["markets"]
    records, kind, market = [], {}, {}
    for item in data["businesses"]:
        city = markets[item["city"]]
        place = Place(item["city"], city["region"], "US", city["metro"], city["lat"], city["lon"])
        records.append(
            BusinessRecord(
                item["id"], item["name"], "eval@example.com", item["description"], item.get("customers", ""),
                item.get("needs", ""), categories=(item["kind"],), place=place,
            )
        )  # fmt: skip
        kind[item["id"]], market[item["id"]] = item["kind"], city["metro"]
    good_kinds = {frozenset(pair) for pair in data["good_kind_pairs"]}
    good = {
        frozenset((a.id, b.id))
        for a in records
        for b in records
        if a.id < b.id and market[a.id] == market[b.id] and frozenset((kind[a.id], kind[b.id])) in good_kinds
    }
    good |= {frozenset(pair) for pair in data.get("good_pairs", [])}
    return EvalSet(records, kind, market, good)


def metrics(evaluation: EvalSet, ranked: dict[str, list[str]]) -> tuple[float, float, float]:
    """(precision@5, competitor rate in top 5, coverage) over businesses that have a good partner."""
    judged = [r.id for r in evaluation.records if any(evaluation.is_good(r.id, o.id) for o in evaluation.records)]
    precision, shown, competitors, covered = [], 0, 0, 0
    for business in judged:
        top = ranked.get(business, [])[:K]
        hits = sum(evaluation.is_good(business, other) for other in top)
        precision.append(hits / K)
        shown += len(top)
        competitors += sum(evaluation.is_competitor(business, other) for other in top)
        covered += hits > 0
    return float(np.mean(precision)), competitors / max(shown, 1), covered / len(judged)


def run_netweave(records: list[BusinessRecord], embedder: Embedder, rules: Rules) -> dict[str, list[str]]:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(StoreSettings(url=str(Path(folder) / "eval.sqlite3")))
        store.migrate()
        store.upsert_businesses(records, datetime.now(UTC))
        Matcher(store, embedder, rules).refresh_all()
        ranked = {r.id: [s.other_id for s in store.suggestions_for(r.id)] for r in records}
        store.close()
    return ranked


def run_plain_embedding(records: list[BusinessRecord], embedder: Embedder) -> dict[str, list[str]]:
    vectors = embedder.encode([r.description for r in records])
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return {r.id: [records[j].id for j in np.argsort(-similarity[i])[:K]] for i, r in enumerate(records)}


def run_random(records: list[BusinessRecord], seed: int = 5) -> dict[str, list[str]]:
    rng = random.Random(seed)
    ids = [r.id for r in records]
    return {i: rng.sample([o for o in ids if o != i], K) for i in ids}


def main() -> int:
    evaluation = load_eval_set()
    embedder, rules = Embedder(), Rules.load()
    print(f"evaluation set: {len(evaluation.records)} businesses, {len(evaluation.good)} good pairs (labelled by hand)")
    ok = True
    for label, records in (
        ("categories given", evaluation.records),
        ("no categories", [replace(r, categories=()) for r in evaluation.records]),
    ):
        oracle = {r.id: sorted(o.id for o in evaluation.records if evaluation.is_good(r.id, o.id))[:K] for r in records}
        results = {
            "best possible": metrics(evaluation, oracle),
            "netweave": metrics(evaluation, run_netweave(records, embedder, rules)),
            "plain embedding": metrics(evaluation, run_plain_embedding(records, embedder)),
            "random": metrics(evaluation, run_random(records)),
        }
        print(f"\n[{label}]")
        print(f"  {'method':<16} {'precision@5':>12} {'competitors@5':>14} {'coverage':>9}")
        for method, (precision, competitor_rate, coverage) in results.items():
            print(f"  {method:<16} {precision:>12.3f} {competitor_rate:>14.1%} {coverage:>9.1%}")
        ours, plain = results["netweave"], results["plain embedding"]
        checks = {
            f"precision@5 >= 2x plain embedding ({ours[0]:.3f} vs {2 * plain[0]:.3f})": ours[0] >= 2 * plain[0],
            f"competitor rate < 1% ({ours[1]:.1%})": ours[1] < 0.01,
            f"coverage > 95% ({ours[2]:.1%})": ours[2] > 0.95,
        }
        for name, passed in checks.items():
            print(f"  {'PASS' if passed else 'FAIL'}  {name}")
        ok = ok and all(checks.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
