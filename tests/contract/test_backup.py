"""Backups of the embedded store (SQLite's online backup API): taken while a writer keeps
writing, restored into a fresh store with every business, tie, introduction, suggestion and
weekly email found again; damaged or foreign files refused with nothing changed. On Neo4j the
commands say how that store is backed up instead (graph/neo4j-server dump and load)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graph import BusinessRecord, Salesperson, StoreSettings, Tie, TieKind, open_store
from graph.embedded_store import BackupRefused
from graph.records import GenerationKind, Introduction, IntroStatus, IntroStep, Suggestion, SuggestionList
from tests.support.service import free_port

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DANA = "dana@example.com"


def fill(store) -> None:
    store.upsert_salespeople([Salesperson(DANA, "Dana Example", DANA)])
    store.upsert_businesses([BusinessRecord(f"B{i}", f"Business {i}", DANA) for i in range(50)], NOW)
    store.add_ties([Tie("B0", "B1", TieKind.KNOWS)], NOW)
    generation = store.write(lambda tx: tx.begin_generation(GenerationKind.FULL, model="m", rules_digest="r",
                                                            settings_digest="s", now=NOW))  # fmt: skip
    lists = [SuggestionList(f"B{i}", NOW, (Suggestion(f"B{i}", f"B{i + 1}", 1, 0.8, ("a",), ("b",), NOW),))
             for i in range(2, 40)]  # fmt: skip
    store.write(lambda tx: tx.write_lists(generation.id, lists))
    store.write(lambda tx: tx.publish_generation(generation.id, NOW, []))
    step = (IntroStep(IntroStatus.PROPOSED, NOW, DANA),)
    made = Introduction("i1", "B2", "B3", IntroStatus.PROPOSED, NOW, DANA, "hi", "hi", steps=step)
    store.write(lambda tx: tx.create_introduction(made))


def test_a_backup_taken_while_writes_go_on_restores_everything_into_a_fresh_store(tmp_path: Path):
    live = open_store(StoreSettings(url=str(tmp_path / "live.sqlite3")))
    live.migrate()
    fill(live)
    stop = threading.Event()

    def keep_writing() -> None:  # the app carries on while the backup runs
        n = 0
        while not stop.is_set():
            live.upsert_businesses([BusinessRecord(f"W{n}", f"Written {n}", DANA)], NOW + timedelta(seconds=n))
            n += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        live.backup_to(tmp_path / "backup.sqlite3")
    finally:
        stop.set()
        writer.join()
    assert not (tmp_path / "backup.sqlite3.partial").exists()
    with pytest.raises(FileExistsError):
        live.backup_to(tmp_path / "backup.sqlite3")  # never over an earlier backup

    fresh = open_store(StoreSettings(url=str(tmp_path / "fresh.sqlite3")))
    fresh.migrate()
    with closing(sqlite3.connect(tmp_path / "backup.sqlite3")) as backup:
        [(backed_up,)] = backup.execute("SELECT view FROM match_state").fetchall()
    assert fresh.restore_from(tmp_path / "backup.sqlite3") == []
    assert fresh.view_version() != backed_up, "a new view version: no sheet read before the restore is kept"
    restored = {b.id for b in fresh.list_businesses(limit=100_000)}
    assert {f"B{i}" for i in range(50)} <= restored  # and however many W* rows the snapshot caught
    assert restored <= {b.id for b in live.list_businesses(limit=100_000)}
    assert [(t.a, t.b) for t in fresh.ties_of("B0")] == [("B0", "B1")]
    assert fresh.get_introduction("i1").status is IntroStatus.PROPOSED
    assert [s.other_id for s in fresh.suggestions_for("B2")] == ["B3"]
    assert fresh.published_generation().id == live.published_generation().id
    assert fresh.applied_migrations() == live.applied_migrations()
    fresh.close()
    live.close()


def test_a_damaged_or_foreign_file_is_refused_and_the_store_is_left_as_it_was(tmp_path: Path):
    store = open_store(StoreSettings(url=str(tmp_path / "live.sqlite3")))
    store.migrate()
    fill(store)
    (tmp_path / "notes.txt").write_text("not a database at all\n" * 100)
    other = tmp_path / "other.sqlite3"

    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE things (x)")
    newer = tmp_path / "newer.sqlite3"
    store.backup_to(newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES ('999_future', '2030-01-01')")
    for path, why in ((tmp_path / "notes.txt", "not a Netweave backup"), (other, "not a Netweave backup"),
                      (newer, "made by a newer Netweave"), (tmp_path / "missing", "no such file")):  # fmt: skip
        with pytest.raises(BackupRefused, match=why):
            store.restore_from(path)
    assert len(store.list_businesses(limit=1000)) == 50 and store.get_introduction("i1") is not None
    store.close()


def test_the_cli_backs_up_and_restores_or_says_how_on_neo4j(app, runner, backend, tmp_path: Path):
    store = app.extensions["netweave.store"]
    fill(store)
    target = tmp_path / "nightly.sqlite3"
    answer = runner.invoke(args=["graph", "backup", str(target)])
    if backend == "neo4j":
        assert answer.exit_code == 1 and "graph/neo4j-server dump" in answer.output
        assert runner.invoke(args=["graph", "restore", str(target), "--yes"]).exit_code == 1
        return
    assert answer.exit_code == 0 and "backed up to" in answer.output, answer.output
    assert runner.invoke(args=["graph", "backup", str(target)]).exit_code == 2  # exists already
    store.write(lambda tx: tx.set_archived(["B0", "B1"], True, NOW))
    assert runner.invoke(args=["graph", "restore", str(target)], input="n\n").exit_code == 1  # asked, declined
    assert len(store.list_businesses(limit=1000)) == 48
    restored = runner.invoke(args=["graph", "restore", str(target), "--yes"])
    assert restored.exit_code == 0 and "restored" in restored.output and "50 businesses" in restored.output
    assert len(store.list_businesses(limit=1000)) == 50  # the archive after the backup is undone
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"\0" * 4096)
    refused = runner.invoke(args=["graph", "restore", str(garbage), "--yes"])
    assert refused.exit_code == 2 and "not a Netweave backup" in refused.output


@pytest.mark.neo4j
def test_a_neo4j_dump_taken_from_a_running_server_loads_into_a_fresh_one_with_everything(tmp_path: Path):
    """graph/neo4j-server dump and load, on Neo4j servers of the test's own (a dump stops the
    server and starts it again)."""
    script = Path(__file__).resolve().parents[2] / "graph" / "neo4j-server"

    def server(name: str, port: int, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "NETWEAVE_NEO4J_DIR": str(tmp_path / name), "NETWEAVE_NEO4J_PORT": str(port),
               "NETWEAVE_NEO4J_PASSWORD": "backup-test"}  # fmt: skip
        return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=300)

    def connect(port: int):
        store = open_store(StoreSettings(url=f"bolt://127.0.0.1:{port}", password="backup-test"))
        store.migrate()
        return store

    first, second = free_port(), free_port()
    dump = tmp_path / "graph.dump"
    assert server("first", first, "start").returncode == 0
    try:
        store = connect(first)
        fill(store)
        store.close()
        dumped = server("first", first, "dump", str(dump))
        assert dumped.returncode == 0, dumped.stderr
        assert "dumped the graph" in dumped.stderr and "started" in dumped.stderr  # running again after
        assert server("first", first, "dump", str(dump)).returncode == 1  # never over an earlier dump
    finally:
        server("first", first, "stop")

    loaded = server("second", second, "load", str(dump))  # a fresh server, never started
    assert loaded.returncode == 0, loaded.stderr
    missing = server("second", second, "load", str(tmp_path / "missing.dump"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    assert server("second", second, "start").returncode == 0
    try:
        store = connect(second)
        try:
            assert len(store.list_businesses(limit=1000)) == 50
            assert [(t.a, t.b) for t in store.ties_of("B0")] == [("B0", "B1")]
            assert store.get_introduction("i1").status is IntroStatus.PROPOSED
            assert [s.other_id for s in store.suggestions_for("B2")] == ["B3"]
            assert store.published_generation() is not None
        finally:
            store.close()
    finally:
        server("second", second, "stop")
