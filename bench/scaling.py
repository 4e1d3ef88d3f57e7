"""Scale-out: a full refresh split by market across workers, on a real Redis queue.

    make bench-scaling          python -m bench.scaling [--businesses 100000] [--neo4j-url URL]

A synthetic book (bench.matching's generator: the demo's kinds in markets of about 2,000
businesses, 300+ km apart) is imported and embedded in this process first, so that the runs
below time the refresh itself. Then, with Debian's redis-server as the queue and two web
processes (the Procfile's gunicorn, `--workers 2`) answering API reads throughout:

1. one worker (`flask --app app worker`) on one core (taskset): its first job, a full refresh,
   timed from the job's record (claimed to done); its lists are the reference;
2. the worker and one helper (`flask --app app worker --helper`), NETWEAVE_REFRESH_PARTS=2,
   each on a core of its own: what one more machine adds;
3. one worker on both cores (numpy and the store's writer thread use the second);
4. the worker and the helper sharing both cores: two workers on what one had.

It prints each run's time and every worker process's peak memory (RSS, sampled), checks
that every run publishes exactly the reference lists (every business, suggestion for
suggestion: ids, ranks, scores and reasons), that the helper ranked a part, and that every
API read during the runs was answered 200. The baseline is one worker, measured in the same
run. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bench.matching import report_targets, synthetic_rows, target, timed, wipe_neo4j
from bench.processes import start, stop, wait_until
from graph import GraphStore, StoreSettings, open_store
from graph.records import BusinessStatus, JobStatus, TokenScope
from netweave.importer import import_rows
from netweave.importer.reader import RawRow
from netweave.matching.embedder import Embedder, refresh_embeddings
from netweave.matching.rules import Rules
from netweave.services.access import Viewer
from netweave.services.tokens import create_token
from tests.support.redis import RedisServer

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def published(store: GraphStore) -> dict[str, list[tuple]]:
    lists: dict[str, list[tuple]] = {}
    for suggestion in store.all_suggestions():
        lists.setdefault(suggestion.business_id, []).append(suggestion.ranked())
    return lists


class PeakRss(threading.Thread):
    """The peak RSS of each process matching `what`, sampled every 0.2 s."""

    def __init__(self, roots: dict[str, subprocess.Popen]):
        super().__init__(daemon=True)
        self.roots = roots
        self.peak: dict[str, float] = dict.fromkeys(roots, 0.0)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for name, process in self.roots.items():
                try:
                    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
                    rss = max(p.memory_info().rss for p in tree) / 2**30
                except psutil.Error:
                    continue
                self.peak[name] = max(self.peak[name], rss)


class Reader(threading.Thread):
    """API reads of random businesses' matches, as a CRM makes them, while the workers refresh."""

    def __init__(self, base: str, token: str, ids: list[str]):
        super().__init__(daemon=True)
        self.base, self.token, self.ids = base, token, ids
        self.answers: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.wait(0.05):
            business = self.ids[(n * 7919) % len(self.ids)]
            n += 1
            request = urllib.request.Request(f"{self.base}/api/v1/businesses/{business}/matches",
                                             headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    status = answer.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            self.answers[status] = self.answers.get(status, 0) + 1


Run = tuple[float, dict[str, float], dict[int, int], str]  # seconds, peak RSS (GiB) by process, reads, log


def full_refresh(store: GraphStore, env: dict[str, str], folder: Path, helpers: int, base: str, token: str,
                 ids: list[str], cores: list[str] | None) -> Run:  # fmt: skip
    """Start the worker (and helpers, each on its own core when `cores` are given); wait for
    its first job, a full refresh; stop them. Returns the job's seconds, each process's peak
    RSS (GiB), the reads' statuses, the workers' log."""
    before = {job.id for job in store.list_jobs(limit=1000)}
    log = folder / f"workers-{helpers}-{'pinned' if cores else 'shared'}.log"
    run_env = {**env, "NETWEAVE_REFRESH_PARTS": str(helpers + 1)}

    def command(n: int, *extra: str) -> list[str]:
        pin = ["taskset", "-c", cores[n]] if cores else []
        return [*pin, str(BIN / "flask"), "--app", "app", "worker", *extra]

    processes = {"worker": start(command(0), run_env, log)}
    for n in range(helpers):
        processes[f"helper {n + 1}"] = start(command(n + 1, "--helper"), run_env, log)
    sampler, reader = PeakRss(processes), Reader(base, token, ids)
    sampler.start()
    reader.start()
    try:

        def done() -> Any:
            jobs = [job for job in store.list_jobs(limit=1000) if job.id not in before and job.kind == "refresh_all"]
            return next((job for job in jobs if job.status in (JobStatus.DONE, JobStatus.FAILED)), None)

        job = wait_until(done, "the worker's first full refresh", processes["worker"], log, 3600)
    finally:
        sampler.stop.set()
        reader.stop.set()
        for process in processes.values():
            stop(process)
    if job.status is not JobStatus.DONE:
        raise SystemExit(f"the full refresh failed: {job.error}")
    seconds = (job.finished_at - job.started_at).total_seconds()
    return seconds, sampler.peak, reader.answers, log.read_text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--businesses", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--neo4j-url", default=None, help="run on this Neo4j (wiped) instead of the embedded store")
    parser.add_argument("--neo4j-password", default=os.environ.get("NETWEAVE_TEST_NEO4J_PASSWORD", "netweave-test"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="netweave-scaling-") as name, RedisServer(Path(name)) as redis:
        folder = Path(name)
        if args.neo4j_url:
            settings = StoreSettings(url=args.neo4j_url, password=args.neo4j_password)
        else:
            settings = StoreSettings(url=str(folder / "graph.sqlite3"))
        store = open_store(settings)
        store.migrate()
        if store.backend == "neo4j":
            wipe_neo4j(store)
        print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; {store.backend} "
              f"store; queue on redis-server {redis.url}")  # fmt: skip
        rows = synthetic_rows(args.businesses, args.seed)
        report, seconds = timed(import_rows, store, [RawRow(n + 2, row) for n, row in enumerate(rows)])
        print(f"  import                 {seconds:8.1f} s   {report.summary()}")
        businesses = store.all_businesses(BusinessStatus.ACTIVE)
        embedder = Embedder()
        stats, seconds = timed(refresh_embeddings, store, embedder, businesses, Rules.load())
        print(f"  embedding (in-process) {seconds:8.1f} s   {stats.texts} texts: the runs below embed nothing")
        token = create_token(store, Viewer.system(), "bench", [TokenScope.READ]).secret
        ids = [b.id for b in businesses]
        del businesses, rows

        (folder / "metrics").mkdir()
        env = {**os.environ, "NETWEAVE_GRAPH_URL": settings.url, "NETWEAVE_NEO4J_USER": settings.user,
               "NETWEAVE_NEO4J_PASSWORD": settings.password, "NETWEAVE_REDIS_URL": redis.url,
               "NETWEAVE_METRICS_DIR": str(folder / "metrics"), "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
               "NETWEAVE_API_RATE_LIMIT": "100000000 per minute", "HF_HUB_OFFLINE": "1",
               "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
        port = 8900 + os.getpid() % 90
        web = start([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                     "--worker-class", "netweave.web.shedding.QueueTimedWorker", "netweave:create_app()"], env,
                    folder / "web.log")  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            healthy = lambda: urllib.request.urlopen(base + "/healthz", timeout=5).status == 200  # noqa: E731
            wait_until(healthy, "the web processes answer", web, folder / "web.log", 60)
            print(f"  web: gunicorn, 2 processes on {base}; API reads of random businesses' matches throughout")

            runs = {}
            for label, helpers, cores in [
                ("1 worker, 1 core", 0, ["0"]),
                ("2 workers, 1 core each", 1, ["0", "1"]),
                ("1 worker, 2 cores", 0, None),
                ("2 workers sharing 2 cores", 1, None),
            ]:
                seconds, peaks, reads, logs = full_refresh(store, env, folder, helpers, base, token, ids, cores)
                runs[label] = (seconds, reads, logs, published(store))
                memory = ", ".join(f"{name} {peak:.2f} GiB" for name, peak in peaks.items())
                print(f"  {label:27} {seconds:7.1f} s   peak RSS {memory}; API reads {reads}")
            one, two = runs["1 worker, 1 core"][0], runs["2 workers, 1 core each"][0]
            print(f"  speed-up, a core per worker (as a machine more):      {one / two:.2f}x")
            one, two = runs["1 worker, 2 cores"][0], runs["2 workers sharing 2 cores"][0]
            print(f"  speed-up, two workers on the cores one worker had:    {one / two:.2f}x")
        finally:
            stop(web)
            store.close()
        print()
        reference = runs["1 worker, 1 core"][3]
        for label, (_, _, logs, lists) in runs.items():
            differing = sum(1 for i in set(reference) | set(lists) if reference.get(i) != lists.get(i))
            if label != "1 worker, 1 core":
                detail = f"{len(reference):,} businesses compared suggestion for suggestion, {differing} differ"
                target(f"{label}: the lists equal one worker's", differing == 0, detail)
            if label.startswith("2 workers"):
                helped = re.findall(r"generation \d+: ranked (\d+) part", logs)
                detail = f"parts it ranked: {', '.join(helped) or 'none'}"
                target(f"{label}: the helper ranked a part", bool(helped), detail)
        statuses: dict[int, int] = {}
        for _, reads, _, _ in runs.values():
            for status, count in reads.items():
                statuses[status] = statuses.get(status, 0) + count
        target("every API read answered 200 during every refresh", set(statuses) == {200}, f"statuses {statuses}")
    return report_targets()


if __name__ == "__main__":
    sys.exit(main())
