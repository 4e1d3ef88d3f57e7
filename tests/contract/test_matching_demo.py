"""Matching over the whole demo book, and the `match` commands, on both backends."""

from __future__ import annotations

import json
import re

from netweave import demo


def test_across_the_demo_no_suggestion_breaks_a_rule(store, matcher, rules):
    data = demo.generate()
    demo.load(store, data)
    matcher.refresh_all()
    suggestions = store.all_suggestions()
    businesses = {b.id: b.record for b in store.all_businesses()}
    inferred = {i: c[0].category for i, c in store.inferred_categories().items()}
    ties = {(t.a, t.b) for t in store.all_ties()}
    blocked = store.do_not_introduce_pairs()

    def kind(business_id):
        given = next((k for c in businesses[business_id].categories if (k := rules.kind_for(c))), None)
        return given or inferred.get(business_id)

    assert len({s.business_id for s in suggestions}) / len(businesses) > 0.9, "nearly everyone gets suggestions"
    for s in suggestions:
        a, b = businesses[s.business_id], businesses[s.other_id]
        pair = tuple(sorted((s.business_id, s.other_id)))
        assert pair not in ties and pair not in blocked
        assert not a.opted_out and not b.opted_out
        same_market = a.place.market == b.place.market
        assert not (same_market and rules.competitors(kind(s.business_id), kind(s.other_id))), (a.name, b.name)
        assert same_market or rules.remote(kind(s.business_id)) or rules.remote(kind(s.other_id))
        assert s.reasons and s.other_reasons and 0 < s.score <= 1
    assert all(len(store.suggestions_for(i)) <= matcher.settings.top_n for i in businesses)


def test_match_commands(runner, embedder, tmp_path):
    csv_path = tmp_path / "book.csv"
    demo.write_csv(demo.generate(3, 160), csv_path)
    imported = runner.invoke(args=["import", str(csv_path)])
    assert imported.exit_code == 0, imported.output
    assert re.search(r"suggestions refresh in the background: job [0-9a-f]{32} \(queued\)", imported.stdout)
    ran = runner.invoke(args=["jobs", "run"])
    assert ran.exit_code == 0 and ran.stdout == "ran 1 job(s)\n", ran.output
    listed = runner.invoke(args=["jobs", "list"]).stdout
    assert "refresh_changes  done" in listed and "full refresh: 160 businesses refreshed" in listed

    queued = runner.invoke(args=["match", "refresh"]).stdout
    job_id = re.search(r"job ([0-9a-f]{32})", queued).group(1)
    assert runner.invoke(args=["jobs", "run"]).exit_code == 0
    shown = runner.invoke(args=["jobs", "show", job_id]).stdout
    assert "status        done" in shown and "kind          refresh_all" in shown
    assert runner.invoke(args=["jobs", "show", "nope"]).exit_code == 2

    out = tmp_path / "suggestions.json"
    assert runner.invoke(args=["match", "export", "--output", str(out)]).exit_code == 0
    exported = json.loads(out.read_text())
    first = exported[0]
    assert set(first) == {"id", "name", "suggestions"}
    top = first["suggestions"][0]
    assert set(top) == {"rank", "id", "name", "score", "why_for_business", "why_for_other", "computed_at"}

    dismissed = runner.invoke(args=["match", "dismiss", first["id"], top["id"], "--reason", "not_relevant"])
    assert dismissed.exit_code == 0, dismissed.output
    again = json.loads(runner.invoke(args=["match", "export"]).stdout)
    entry = next(e for e in again if e["id"] == first["id"])
    assert top["id"] not in [s["id"] for s in entry["suggestions"]], "hidden at once"
    assert runner.invoke(args=["jobs", "run"]).stdout == "ran 1 job(s)\n"
    refreshed = json.loads(runner.invoke(args=["match", "export"]).stdout)
    entry = next(e for e in refreshed if e["id"] == first["id"])
    assert top["id"] not in [s["id"] for s in entry["suggestions"]] and len(entry["suggestions"]) == 5

    assert runner.invoke(args=["match", "outcome", first["id"], "nope", "accepted"]).exit_code == 2
    assert "no customer with id 'nope'" in runner.invoke(args=["match", "outcome", first["id"], "nope", "made"]).stderr
    summary = runner.invoke(args=["match", "rules"]).stdout
    assert re.match(r"\d+ kinds \(\d+ work remotely\), \d+ spheres, \d+ specific pairs$", summary.splitlines()[0])
    assert "learned from outcomes: 2 weight(s) moved" in summary, "the dismissal moved both sides' weights"
