"""Import benchmark: 10,000 CRM rows with 1% bad rows, imported twice, on each backend.

    make bench-import            (starts the test Neo4j, runs both backends)
    python -m bench.importing --rows 10000 [--neo4j-url neo4j://127.0.0.1:7688]

Checks, and prints: every bad row reported by line, every good row stored, the
second import all unchanged; time of each import against the machine's baseline
measured in the same run (bare inserts of the same rows into the same backend).

    make bench-import-large      python -m bench.importing --large [--sizes 10,100]

Streams files of 10 and 100 MB into the embedded store, each import in a fresh process, and
prints each one's peak memory (VmHWM) beside the baseline measured in the same run: the
same process reading the file into memory the plain way (csv.DictReader into a list), which
is what an importer that holds the file would need before judging a single row.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from graph import GraphStore, StoreSettings, open_store
from netweave import demo
from netweave.importer import import_file

DEFECTS = ("missing id", "missing name", "malformed email", "not utf-8", "bad employee count", "duplicate id")


def build_file(path: Path, rows: int, bad_share: float, seed: int) -> set[int]:
    """Write a CSV of `rows` demo-like rows; return the line numbers made bad on purpose."""
    rng = random.Random(seed)
    base = demo.generate(seed, max(demo.DEFAULT_COUNT, demo.MIN_COUNT)).rows
    records = []
    for i in range(rows):
        row = dict(base[i % len(base)])
        row.update(id=f"B-{i:06d}", name=f"{row['name']} #{i}", partners="", knows="")
        records.append(row)
    bad_count = round(rows * bad_share)
    chosen = rng.sample(range(rows), bad_count)
    bad_lines = {i + 2 for i in chosen}
    encoded_bad: set[int] = set()
    pending_duplicate = None
    for position, index in enumerate(chosen):
        defect = DEFECTS[position % len(DEFECTS)]
        row = records[index]
        if defect == "duplicate id":
            # Both rows of a duplicate pair are rejected, so pairs use two of the chosen rows.
            if pending_duplicate is None:
                pending_duplicate = row
            else:
                row["id"] = pending_duplicate["id"]
                pending_duplicate = None
            continue
        if defect == "missing id":
            row["id"] = ""
        elif defect == "missing name":
            row["name"] = " "
        elif defect == "malformed email":
            row["email"] = row["email"].replace("@", " at ")
        elif defect == "bad employee count":
            row["employees"] = "about ten"
        elif defect == "not utf-8":
            row["name"] = row["name"] + " Café"
            encoded_bad.add(index)
    if pending_duplicate is not None:  # an odd one out: make it bad another way
        pending_duplicate["id"] = ""
    with path.open("wb") as out:
        header = io.StringIO()
        csv.DictWriter(header, fieldnames=demo.COLUMNS).writeheader()
        out.write(header.getvalue().encode())
        for index, row in enumerate(records):
            text = io.StringIO()
            csv.DictWriter(text, fieldnames=demo.COLUMNS).writerow(row)
            out.write(text.getvalue().encode("cp1252" if index in encoded_bad else "utf-8"))
    return bad_lines


def all_ids(store: GraphStore) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while page := store.list_businesses(limit=2000, offset=offset):
        ids.update(b.id for b in page)
        offset += len(page)
    return ids


def baseline_seconds(store: GraphStore, path: Path) -> float:
    """Bare insert of the same rows into the same backend: no validation, no upsert logic."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        rows = [(r["id"], r["name"], r["description"]) for r in csv.DictReader(handle)]
    started = time.perf_counter()
    if store.backend == "embedded":
        with tempfile.TemporaryDirectory() as folder:
            conn = sqlite3.connect(Path(folder) / "baseline.sqlite3")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("CREATE TABLE t (id TEXT, name TEXT, description TEXT)")
            for start in range(0, len(rows), 500):
                with conn:
                    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows[start : start + 500])
            conn.close()
    else:
        payload = [{"id": r[0], "name": r[1], "description": r[2]} for r in rows]
        for start in range(0, len(payload), 500):
            store.driver.execute_query(
                "UNWIND $rows AS row CREATE (:BaselineRow {id: row.id, name: row.name, description: row.description})",
                rows=payload[start : start + 500],
            )
        store.driver.execute_query("MATCH (n:BaselineRow) DETACH DELETE n")
    return time.perf_counter() - started


def run(label: str, settings: StoreSettings, path: Path, bad_lines: set[int], rows: int) -> bool:
    store = open_store(settings)
    store.migrate()
    if store.backend == "neo4j":
        store.driver.execute_query("MATCH (n) WHERE NOT n:SchemaMigration AND NOT n:SchemaLock DETACH DELETE n")
    try:
        base = baseline_seconds(store, path)
        started = time.perf_counter()
        first = import_file(store, path)
        first_seconds = time.perf_counter() - started
        started = time.perf_counter()
        second = import_file(store, path)
        second_seconds = time.perf_counter() - started

        reported = {r.line for r in first.rejected}
        stored = all_ids(store)
        good = rows - len(bad_lines)
        checks = {
            "every bad row reported by line": reported == bad_lines,
            "every good row stored": first.created == good and len(stored) == good,
            "second import all unchanged": (second.unchanged, second.created, second.updated) == (good, 0, 0),
            "second import reports the same bad rows": {r.line for r in second.rejected} == bad_lines,
        }
        print(f"\n[{label}]")
        print(f"  first import   {first_seconds:7.2f} s  {rows / first_seconds:8.0f} rows/s   {first.summary()}")
        print(f"  second import  {second_seconds:7.2f} s  {rows / second_seconds:8.0f} rows/s   {second.summary()}")
        print(f"  baseline       {base:7.2f} s  {rows / base:8.0f} rows/s   bare inserts of the same rows")
        print(f"  import / baseline: {first_seconds / base:.1f}x")
        kinds = sorted({r.reason.split(":")[0].split(" (")[0] for r in first.rejected})
        print(f"  rejection kinds: {', '.join(kinds)}")
        for name, ok in checks.items():
            print(f"  {'PASS' if ok else 'FAIL'}  {name}")
        return all(checks.values())
    finally:
        store.close()


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child_import(path: Path, database: Path) -> dict[str, float]:
    """One import in this (fresh) process: its time and this process's peak memory."""
    from netweave.importer import prepare_file, write_rows

    store = open_store(StoreSettings(url=str(database)))
    store.migrate()
    before = peak_rss_mib()
    started = time.perf_counter()
    prepared = prepare_file(path, store=store)
    report = write_rows(store, prepared)
    seconds = time.perf_counter() - started
    store.close()
    return {"seconds": seconds, "rows": report.rows, "created": report.created, "rejected": len(report.rejected),
            "start_mib": before, "peak_mib": peak_rss_mib()}  # fmt: skip


def child_baseline(path: Path) -> dict[str, float]:
    """The plain way to read an export: every row into a list of dicts."""
    from netweave.importer import prepare_file  # noqa: F401  (the same modules loaded as for an import)

    before = peak_rss_mib()
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {"rows": len(rows), "start_mib": before, "peak_mib": peak_rss_mib()}


def in_fresh_process(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "bench.importing", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def large(sizes_mb: list[int], seed: int) -> bool:
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; embedded store; each run a fresh process")
    print(f"{'file':>8} {'rows':>9} {'import s':>9} {'rows/s':>7} {'peak MiB':>9} {'start MiB':>9} "
          f"{'baseline peak MiB':>18}")  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory() as folder:
        sample = Path(folder) / "sample.csv"
        build_file(sample, 2000, 0.0, seed)
        bytes_per_row = sample.stat().st_size / 2000
        for size in sizes_mb:
            path = Path(folder) / f"export-{size}mb.csv"
            rows = int(size * 1e6 / bytes_per_row)
            build_file(path, rows, 0.001, seed)
            database = Path(folder) / f"import-{size}mb.sqlite3"
            imported = in_fresh_process("--child-import", str(path), str(database))
            plain = in_fresh_process("--child-baseline", str(path))
            results.append((path.stat().st_size, imported, plain))
            print(f"{path.stat().st_size / 1e6:6.0f}MB {imported['rows']:9.0f} {imported['seconds']:9.1f} "
                  f"{imported['rows'] / imported['seconds']:7.0f} {imported['peak_mib']:9.0f} "
                  f"{imported['start_mib']:9.0f} {plain['peak_mib']:18.0f}")  # fmt: skip
            path.unlink()
            database.unlink()
    (small_bytes, small, small_plain), (big_bytes, big, big_plain) = results[0], results[-1]
    file_mib = (big_bytes - small_bytes) / 2**20
    growth = (big["peak_mib"] - small["peak_mib"]) / file_mib
    plain_growth = (big_plain["peak_mib"] - small_plain["peak_mib"]) / file_mib
    per_row = (big["peak_mib"] - small["peak_mib"]) * 2**20 / (big["rows"] - small["rows"])
    print(
        f"peak memory grows {growth:.2f} MiB per MiB of file ({per_row:.0f} bytes per row: the id and line "
        f"of each row judged, to find repeated ids); the plain read grows {plain_growth:.2f} MiB per MiB"
    )
    ok = big["created"] > 0 and growth < plain_growth / 3
    print(f"{'PASS' if ok else 'FAIL'}  rows not held: under a third of the plain read's growth")
    return ok


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-import":
        print(json.dumps(child_import(Path(sys.argv[2]), Path(sys.argv[3]))))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--child-baseline":
        print(json.dumps(child_baseline(Path(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--bad-share", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--neo4j-url", default=os.environ.get("NETWEAVE_TEST_NEO4J_URL"))
    parser.add_argument("--neo4j-password", default=os.environ.get("NETWEAVE_TEST_NEO4J_PASSWORD", "netweave-test"))
    parser.add_argument("--large", action="store_true", help="stream large files and print peak memory")
    parser.add_argument("--sizes", default="10,100", help="file sizes in MB for --large")
    args = parser.parse_args()
    if args.large:
        return 0 if large([int(size) for size in args.sizes.split(",")], args.seed) else 1

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crm-export.csv"
        bad_lines = build_file(path, args.rows, args.bad_share, args.seed)
        print(f"{args.rows} rows, {len(bad_lines)} bad ({', '.join(DEFECTS)}), {path.stat().st_size / 1e6:.1f} MB")
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        ok = run("embedded", StoreSettings(url=str(Path(folder) / "bench.sqlite3")), path, bad_lines, args.rows)
        if args.neo4j_url:
            settings = StoreSettings(url=args.neo4j_url, password=args.neo4j_password)
            ok = run("neo4j", settings, path, bad_lines, args.rows) and ok
        else:
            print("\n[neo4j] not run: pass --neo4j-url or use `make bench-import`")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
