"""The JSON API under load: gunicorn as the Procfile runs it, driven by wrk, /healthz as baseline.

    make bench-api                           (both backends: starts the test Neo4j, installs wrk)
    python -m bench.api [--businesses 10000] [--seconds 30] [--backends embedded,neo4j] [--neo4j-url URL]

On each backend it makes a book of 10,000 synthetic businesses (bench.matching's generator),
imports it and computes its suggestions in this process, makes an integration token, then
serves the app as the Procfile does (`gunicorn --workers 2 --threads 4 --worker-class
netweave.web.shedding.QueueTimedWorker "netweave:create_app()"`,
the rate limit set out of reach) and drives it with Debian's wrk: 2 threads, 50
connections, 30 s per scenario after a 10 s warm-up, each request for a random id of the book.
This machine has 2 cores: gunicorn is pinned to core 0 and wrk to core 1 (taskset), so the
load generator does not take the server's CPU (Neo4j and the worker are not pinned). For each
scenario it prints requests/s, p50/p95/p99 and max latency (wrk's own histogram; an answer
slower than 10 s is a timeout, and fails the p95 target), errors, the CPU that gunicorn (master
and workers), Neo4j, wrk and anything else used, as shares of one core, and how busy each core
was (run it alone on the machine: anything else skews the figures):
- baseline: GET /healthz, the cheapest route of the same gunicorn: what the framework and the
  server cost here, measured in the same run with the same wrk settings;
- GET /api/v1/businesses/{id}/matches for random businesses;
- GET /api/v1/salespeople/{email}/matches?limit=20 for random salespeople of the book.
Then it starts a real worker (`flask --app app worker`), waits for its first (full) refresh,
sends 1,000 new businesses in one POST /api/v1/businesses/bulk and prints the request's time
and its refresh job's (from the answer until the job is done, the 1 s debounce included).

Each read scenario runs flat out (each of the 50 connections sends its next request as
soon as it has the answer: the server's throughput; wrk keeps 50 requests in flight, so there
the mean latency is 50 / throughput by Little's law), and at a steady load (each connection
pauses so that the 50 together offer about 345 requests/s; a pause starts when the answer
comes, so they get that less the answers' own time, a little over 300 when answers are quick:
the latency clients see at that rate). Each web process keeps a salesperson's best until a
write that may change it lands (graph/store.py), and no write lands during those two runs, so
that read runs a third time at the steady rate while the view version is renewed once a
second (as a CRM's or a salesperson's write, or the worker publishing, would): the cost of
reading them again, not in the targets. Targets (exit 1 if one is missed), on each backend:
for both reads, >= 300 requests/s flat out, and p95 < 50 ms at >= 300 requests/s steady;
every answer a 200; the bulk upsert of 1,000 answered in < 2 s and its refresh job done.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np
import psutil

from bench.matching import report_targets, synthetic_row, synthetic_rows, target, timed, wipe_neo4j
from bench.processes import free_port, start, stop, wait_until
from graph import GraphStore, StoreSettings, open_store
from graph.records import JobStatus, TokenScope
from netweave.importer import import_rows
from netweave.importer.reader import RawRow
from netweave.matching.embedder import Embedder, encode_memo
from netweave.matching.refresh import Matcher
from netweave.matching.rules import Rules
from netweave.services.access import Viewer
from netweave.services.tokens import create_token

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WRK_CORE = 1  # wrk's core; gunicorn gets every other one (core 0 on this 2-core machine)
THREADS, CONNECTIONS = 2, 50
WRK_TIMEOUT = 10  # s; wrk's default (2 s) would drop slow answers from the percentiles as mere errors
BULK = 1_000  # the most one bulk request takes
P95_MS, MIN_RPS, BULK_SECONDS = 50, 300, 2
STEADY_RATE = 345  # offered by the paced clients: over MIN_RPS, as answers take time too
WORKER_CLASS = "netweave.web.shedding.QueueTimedWorker"  # the Procfile's: gthread that sheds what waited too long
READS = ("GET /api/v1/businesses/{id}/matches", "GET /api/v1/salespeople/{email}/matches?limit=20")
CACHED = READS[1]  # a salesperson's best is kept by each web process until a write may change it

# The wrk script: each request a random path of the list, with the token. `done` prints wrk's
# own figures (latencies in microseconds) on one line, so nothing depends on its report's layout.
LUA = string.Template("""\
local paths = {
$paths
}
wrk.headers["Authorization"] = "Bearer $token"

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)  -- each thread its own sequence of ids
end

function init(args)
  math.randomseed(seed)
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function delay()
  return $pause_ms  -- each connection's pause between its answer and its next request (0: none)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("NETWEAVE-WRK %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
""")
WRK_ERRORS = ("connect", "read", "write", "status", "timeout")


def figure(name: str, seconds: float, detail: str) -> None:
    print(f"  {name:<24} {seconds:8.2f} s   {detail}")


class SharedEncoder:
    """The model, each distinct text encoded once in the whole run: both backends' books hold
    the same texts, and the books are set-up here, not what is measured."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.name, self.dimensions = embedder.name, embedder.dimensions

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return encode_memo(self.embedder, texts)


@dataclass(frozen=True)
class Load:
    """One wrk run: its figures (ms), and the CPU each side used (% of one core)."""

    requests: int
    seconds: float
    p50: float
    p95: float
    p99: float
    max: float
    errors: dict[str, int]
    server_cpu: float
    neo4j_cpu: float | None
    wrk_cpu: float
    cores_busy: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def lua_string(text: str) -> str:
    """A Lua string literal (decimal escapes for anything but printable ASCII)."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else f"\\{b:03d}" for b in text.encode()) + '"'


def cpu_seconds(processes: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds (user and system) each live process has used so far, by pid."""
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return seconds


def used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used in between by the processes alive at both ends."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


def only(seconds: dict[int, float], processes: list[psutil.Process]) -> dict[int, float]:
    pids = {process.pid for process in processes}
    return {pid: value for pid, value in seconds.items() if pid in pids}


def cores_busy(before: list, after: list) -> list[float]:
    """Each core's busy share in between (%), from the kernel's per-core times."""
    shares = []
    for old, new in zip(before, after, strict=True):
        total = sum(new) - sum(old)
        idle = (new.idle - old.idle) + (new.iowait - old.iowait)
        shares.append(100 * (1 - idle / total) if total > 0 else 0.0)
    return shares


def run_wrk(
    base: str, paths: list[str], token: str, seconds: int, folder: Path, server: list[psutil.Process],
    neo4j: psutil.Process | None, rate: float | None = None,
) -> Load:  # fmt: skip
    """wrk on its core against `base` for `seconds`, with the CPU the server and Neo4j used meanwhile.
    Without `rate` each connection sends its next request as soon as it has the answer (the
    server's throughput); with it, each pauses so that the 50 together offer about `rate`
    requests/s (the latency of a steady load)."""
    pause = round(1000 * CONNECTIONS / rate) if rate else 0
    script = folder / "wrk.lua"
    script.write_text(LUA.substitute(paths=",\n".join(map(lua_string, paths)), token=token, pause_ms=pause))
    command = ["taskset", "-c", str(WRK_CORE), "wrk", "-t", str(THREADS), "-c", str(CONNECTIONS),
               "-d", f"{seconds}s", "--timeout", f"{WRK_TIMEOUT}s", "--latency", "-s", str(script), base]  # fmt: skip
    watched = server + ([neo4j] if neo4j else [])
    cpu_before, cores_before = cpu_seconds(watched), psutil.cpu_times(percpu=True)
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child to end meanwhile
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + WRK_TIMEOUT + 60)
    wall = time.perf_counter() - began
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_after, cores_after = cpu_seconds(watched), psutil.cpu_times(percpu=True)
    drain(base)
    found = re.search(r"^NETWEAVE-WRK (.*)$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    requests, duration, p50, p95, p99, slowest, *errors = (float(v) for v in found.group(1).split())
    wrk_cpu = (wrk_after.ru_utime + wrk_after.ru_stime) - (wrk_before.ru_utime + wrk_before.ru_stime)
    return Load(
        requests=int(requests),
        seconds=duration / 1e6,
        p50=p50 / 1000,
        p95=p95 / 1000,
        p99=p99 / 1000,
        max=slowest / 1000,
        errors={name: int(count) for name, count in zip(WRK_ERRORS, errors, strict=True) if count},
        server_cpu=100 * used(only(cpu_before, server), cpu_after) / wall,
        neo4j_cpu=100 * used(only(cpu_before, [neo4j]), cpu_after) / wall if neo4j else None,
        wrk_cpu=100 * wrk_cpu / wall,
        cores_busy=cores_busy(cores_before, cores_after),
    )


@contextmanager
def changing(store: GraphStore, every: float) -> Iterator[None]:
    """Meanwhile, renew the store's view version every `every` s, as each write that may change
    a suggestion sheet does: every web process reads its sheets from the store again."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(every):
            store.write(lambda tx: tx.renew_view_version())

    thread = threading.Thread(target=renew, name="bench-writes", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def drain(base: str, timeout: float = 300) -> None:
    """Wait until gunicorn has served what wrk left behind: when wrk stops, up to 50 requests it
    sent are still queued, and the next run must not wait behind them. A /healthz answered at
    once means nothing is queued before it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        began = time.perf_counter()
        with urllib.request.urlopen(base + "/healthz", timeout=timeout) as response:
            response.read()
        if time.perf_counter() - began < 0.05:
            return
    print(f"  (gunicorn still busy {timeout:.0f} s after wrk stopped: the next figures are skewed)")


def call(method: str, url: str, token: str, body: bytes | None = None) -> tuple[int, Any, int]:
    """(status, decoded JSON, body size) of one request."""
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            data = response.read()
            return response.status, json.loads(data or b"null"), len(data)
    except urllib.error.HTTPError as error:
        data = error.read()
        return error.code, json.loads(data or b"null"), len(data)


def listening_process(url: str) -> psutil.Process | None:
    """The process serving Bolt at `url` (the Neo4j server), to read its CPU use."""
    port = urlsplit(url).port or 7687
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
                return psutil.Process(connection.pid)
    except psutil.AccessDenied:
        pass
    return None


def server_env(settings: StoreSettings, folder: Path) -> dict[str, str]:
    """The environment of gunicorn and the worker: this store, queue and metrics in `folder`."""
    (folder / "metrics").mkdir(exist_ok=True)
    return {
        **os.environ,
        "NETWEAVE_GRAPH_URL": settings.url,
        "NETWEAVE_NEO4J_USER": settings.user,
        "NETWEAVE_NEO4J_PASSWORD": settings.password,
        "NETWEAVE_QUEUE_PATH": str(folder / "queue.sqlite3"),
        "NETWEAVE_METRICS_DIR": str(folder / "metrics"),
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
        "NETWEAVE_API_RATE_LIMIT": "100000000 per minute",  # out of reach: the limiter must not answer 429s here
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }


def prepare(settings: StoreSettings, count: int, seed: int, embedder: SharedEncoder) -> tuple[GraphStore, list, str]:
    """The book imported and its suggestions published, as the worker would; (store, rows, token)."""
    store = open_store(settings)
    store.migrate()
    if store.backend == "neo4j":
        wipe_neo4j(store)
    rows = synthetic_rows(count, seed)
    report, import_seconds = timed(import_rows, store, [RawRow(n + 2, row) for n, row in enumerate(rows)])
    figure("import rows", import_seconds, report.summary())
    refresh, refresh_seconds = timed(Matcher(store, embedder, Rules.load()).refresh_all)
    figure(
        "suggestions (in-process)",
        refresh_seconds,
        f"{refresh.summary()} (texts met on an earlier backend: not encoded again)",
    )
    token = create_token(store, Viewer.system(), "bench", [TokenScope.WRITE]).secret
    return store, rows, token


def print_load(name: str, load: Load) -> None:
    errors = ", ".join(f"{count} {kind}" for kind, count in load.errors.items()) or "none"
    print(
        f"  {name:<48} {load.rps:7.0f} req/s  p50 {load.p50:6.1f}  p95 {load.p95:6.1f}  p99 {load.p99:6.1f}  "
        f"max {load.max:6.0f} ms  ({load.requests:,} requests, errors: {errors})"
    )
    neo4j = f", Neo4j {load.neo4j_cpu:.0f}%" if load.neo4j_cpu is not None else ""
    busy = " / ".join(f"{share:.0f}%" for share in load.cores_busy)
    # What else ran meanwhile (this process, other work on the machine): it skews the figures.
    others = max(sum(load.cores_busy) - load.server_cpu - load.wrk_cpu - (load.neo4j_cpu or 0), 0)
    print(f"  {'':<48} CPU (% of one core): gunicorn {load.server_cpu:.0f}%{neo4j}, wrk {load.wrk_cpu:.0f}%, "
          f"anything else {others:.0f}%; cores busy {busy}")  # fmt: skip


def bulk_upsert(label: str, base: str, token: str, count: int, seed: int) -> None:
    """BULK new businesses in one request, then its refresh job followed until done."""
    rng = random.Random(seed + 1)
    markets = max(3, count // 2000)
    fresh = []
    for n in range(BULK):
        row: dict[str, Any] = synthetic_row(rng, count + n, markets)
        row["latitude"], row["longitude"] = float(row["latitude"]), float(row["longitude"])  # as a CRM sends JSON
        fresh.append(row)
    body = json.dumps({"businesses": fresh}).encode()
    began = time.perf_counter()
    status, answer, _ = call("POST", base + "/api/v1/businesses/bulk", token, body)
    request_seconds = time.perf_counter() - began
    answered = time.perf_counter()
    if status != 200 or not answer.get("refresh_job"):
        raise RuntimeError(f"bulk upsert: {status} {answer}")
    figure(f"bulk upsert of {BULK:,}", request_seconds, f"one POST of {len(body) / 1024:.0f} KiB: {answer['created']} "
           f"created, {answer['updated']} updated, {answer['rejected']} rejected")  # fmt: skip
    target(f"{label}: bulk upsert of {BULK:,} answered < {BULK_SECONDS} s",
           request_seconds < BULK_SECONDS and answer["created"] == BULK,
           f"{request_seconds:.2f} s, {answer['created']} created")  # fmt: skip
    job_url = f"{base}/api/v1/jobs/{answer['refresh_job']['id']}"
    deadline = time.monotonic() + 600
    while (job := call("GET", job_url, token)[1])["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    job_seconds = time.perf_counter() - answered
    if job["started_at"] and job["finished_at"]:
        created, started, finished = (
            datetime.fromisoformat(job[f"{k}_at"]) for k in ("created", "started", "finished")
        )
        waited, ran = (started - created).total_seconds(), (finished - started).total_seconds()
        parts = f"queued {waited:.2f} s, the debounce included, then ran {ran:.2f} s"
    else:
        parts = "not finished"
    figure("its refresh job", job_seconds, f"from the answer until {job['status']} ({parts}): "
           f"{job['summary'] or job['error']}")  # fmt: skip
    target(f"{label}: the bulk upsert's refresh job done", job["status"] == "done",
           f"{job['status']} {job_seconds:.2f} s after the answer")  # fmt: skip


def bench_backend(label: str, settings: StoreSettings, args: argparse.Namespace, embedder: SharedEncoder,
                  folder: Path) -> None:  # fmt: skip
    print(f"\n[{label}, {args.businesses:,} businesses]")
    store, rows, token = prepare(settings, args.businesses, args.seed, embedder)
    env = server_env(settings, folder)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_cores = ",".join(str(core) for core in range(os.cpu_count() or 2) if core != WRK_CORE)
    with ExitStack() as stack:
        stack.callback(store.close)
        # The Procfile's web command, pinned away from wrk's core.
        log = folder / "gunicorn.log"
        gunicorn = start(["taskset", "-c", server_cores, str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}",
                          "--workers", "2", "--threads", "4", "--worker-class", WORKER_CLASS, "netweave:create_app()"],
                         env, log)  # fmt: skip
        stack.callback(stop, gunicorn)
        wait_until(lambda: call("GET", base + "/readyz", token)[0] == 200, "gunicorn ready", gunicorn, log, 120)
        master = psutil.Process(gunicorn.pid)
        server = [master, *master.children(recursive=True)]
        pinned = ",".join(map(str, sorted({core for process in server for core in process.cpu_affinity()})))
        print(
            f"  {'gunicorn':<24} master and {len(server) - 1} workers pinned to core {pinned}, wrk to core {WRK_CORE}"
        )
        neo4j = listening_process(settings.url) if store.backend == "neo4j" else None

        # What the scenarios read, checked once: answers of the expected kind, not 404s.
        emails = sorted({row["salesperson"] for row in rows})
        one = call("GET", f"{base}/api/v1/businesses/{quote(rows[0]['id'], safe='@')}/matches", token)
        best = call("GET", f"{base}/api/v1/salespeople/{quote(emails[0], safe='@')}/matches?limit=20", token)
        if one[0] != 200 or best[0] != 200:
            raise RuntimeError(f"sample answers: {one[0]} {one[1]}; {best[0]} {best[1]}")
        print(
            f"  {'sample answers':<24} {len(one[1]['items'])} suggestions for {rows[0]['id']} ({one[2]:,} bytes), "
            f"{len(best[1]['items'])} for {emails[0]} ({best[2]:,} bytes); {len(emails)} salespeople in the book"
        )
        scenarios = [
            ("GET /healthz (baseline)", ["/healthz"]),
            ("GET /api/v1/businesses/{id}/matches",
             [f"/api/v1/businesses/{quote(row['id'], safe='@')}/matches" for row in rows]),
            ("GET /api/v1/salespeople/{email}/matches?limit=20",
             [f"/api/v1/salespeople/{quote(email, safe='@')}/matches?limit=20" for email in emails]),
        ]  # fmt: skip
        print(f"  wrk: {THREADS} threads, {CONNECTIONS} connections, {args.seconds} s per scenario after "
              f"{args.warmup} s of warm-up; latencies in ms")  # fmt: skip
        loads, steady = {}, {}
        for name, paths in scenarios:
            if args.warmup:
                run_wrk(base, paths, token, args.warmup, folder, server, neo4j)  # first-use costs: not measured
            loads[name] = run_wrk(base, paths, token, args.seconds, folder, server, neo4j)
            print_load(f"{name}, flat out", loads[name])
            if name in READS:
                steady[name] = run_wrk(base, paths, token, args.seconds, folder, server, neo4j, rate=STEADY_RATE)
                print_load(f"{name}, at {STEADY_RATE}/s", steady[name])
            if name == CACHED:
                with changing(store, every=1.0):
                    churned = run_wrk(base, paths, token, args.seconds, folder, server, neo4j, rate=STEADY_RATE)
                print_load(f"{name}, at {STEADY_RATE}/s, a write every 1 s", churned)
        for name in READS:
            target(f"{label}: {name} >= {MIN_RPS} req/s flat out", loads[name].rps >= MIN_RPS,
                   f"{loads[name].rps:.0f} req/s")  # fmt: skip
            load = steady[name]
            # A request that timed out has no latency in wrk's histogram: it must not make the p95 look better.
            late = load.errors.get("timeout", 0)
            detail = f"{load.p95:.1f} ms at {load.rps:.0f} req/s" + (
                f", and {late} timed out after {WRK_TIMEOUT} s" if late else ""
            )
            met = load.requests > 0 and not late and load.p95 < P95_MS and load.rps >= MIN_RPS
            target(f"{label}: {name} p95 < {P95_MS} ms at >= {MIN_RPS} req/s", met, detail)
        failed = {name: load.failed for name, load in [*loads.items(), *steady.items()] if load.failed}
        target(f"{label}: every answer a 200", not failed, "; ".join(f"{n}: {c} errors" for n, c in failed.items())
               or f"{sum(load.requests for load in loads.values()):,} requests")  # fmt: skip

        # Writes: a real worker takes the refresh jobs (unpinned: wrk is not running any more).
        log = folder / "worker.log"
        began = time.perf_counter()
        worker = start([sys.executable, "-m", "flask", "--app", "app", "worker"], env, log)
        stack.callback(stop, worker)

        def idle() -> list | None:
            jobs = store.list_jobs(limit=50)
            return jobs if jobs and all(j.status in (JobStatus.DONE, JobStatus.FAILED) for j in jobs) else None

        jobs = wait_until(idle, "the worker's first refresh", worker, log, 900)
        figure("worker start", time.perf_counter() - began, f"model, book and its first (full) refresh: "
               f"{jobs[0].status.value}, {jobs[0].summary or jobs[0].error}")  # fmt: skip
        bulk_upsert(label, base, token, args.businesses, args.seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--businesses", type=int, default=10_000, help="Size of the book on each backend.")
    parser.add_argument("--seconds", type=int, default=30, help="Measured seconds per scenario.")
    # Neo4j's JIT compiles a new query to native code over its first seconds of use.
    parser.add_argument("--warmup", type=int, default=10, help="Seconds of unmeasured load before each scenario.")
    args, backends = parse_backend_args(parser)
    if missing := [tool for tool in ("wrk", "taskset") if not shutil.which(tool)]:
        print(f"{' and '.join(missing)} not found: `make bench-api` installs Debian's wrk", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    if cores < 2:
        print("needs 2 cores: one for gunicorn, one for wrk", file=sys.stderr)
        return 2
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"machine: {cores} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; {version.split(' Copyright')[0]}")
    began = time.perf_counter()
    embedder = SharedEncoder(Embedder())
    print(f"model loaded: {embedder.name} ({embedder.dimensions} dimensions)")
    on_each_backend(backends, args, embedder, bench_backend, "bench-api")
    print(f"\nwhole run: {time.perf_counter() - began:.0f} s")
    return report_targets()


def parse_backend_args(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, list[str]]:
    """The options every backend bench takes (--backends, --neo4j-url, --neo4j-password,
    --seed) added to `parser`, then the arguments and the chosen backends."""
    parser.add_argument("--backends", default="embedded,neo4j", help="Comma-separated: embedded, neo4j.")
    parser.add_argument("--neo4j-url", default=os.environ.get("NETWEAVE_TEST_NEO4J_URL"))
    parser.add_argument("--neo4j-password", default=os.environ.get("NETWEAVE_TEST_NEO4J_PASSWORD", "netweave-test"))
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    backends = [name for name in args.backends.split(",") if name]
    if unknown := set(backends) - {"embedded", "neo4j"}:
        parser.error(f"--backends: unknown {', '.join(sorted(unknown))} (expected embedded, neo4j)")
    return args, backends


def on_each_backend(backends: Sequence[str], args: argparse.Namespace, embedder: SharedEncoder,
                    bench_backend: Callable[..., None], make_target: str) -> None:  # fmt: skip
    """Run `bench_backend(label, settings, args, embedder, folder)` on each backend, each in a
    folder of its own (removed after); Neo4j only when a URL is given."""
    with tempfile.TemporaryDirectory(prefix=f"netweave-{make_target}-") as folder:
        for backend in backends:
            work = Path(folder) / backend
            (work / "metrics").mkdir(parents=True)
            if backend == "embedded":
                bench_backend("embedded", StoreSettings(url=str(work / "bench.sqlite3")), args, embedder, work)
            elif args.neo4j_url:
                settings = StoreSettings(url=args.neo4j_url, password=args.neo4j_password)
                bench_backend("neo4j", settings, args, embedder, work)
            else:
                print(f"\n[neo4j] not run: pass --neo4j-url or use `make {make_target}`")


if __name__ == "__main__":
    sys.exit(main())
