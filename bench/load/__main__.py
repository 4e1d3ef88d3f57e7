"""Load and soak: the service as `make run` starts it, under a mix of real use (Locust).

    make bench-load                python -m bench.load [--soak-minutes 20] [--businesses 1000]

The demo book (`flask demo load --businesses 1000`: salespeople who sign in with the demo
password), an integration token, then the Procfile run by honcho: gunicorn (2 processes of 4
threads) and the worker, pinned to core 0, Locust pinned to core 1 (taskset), so the load
generator does not take the server's CPU. `bench/load/locustfile.py` says what the users do:
salespeople in the web app (sign in, Today, accounts, "not now" on a suggestion), a CRM on the
API (matches, a salesperson's best, introductions moved on, bulk upserts of changed
businesses, whose refreshes the worker runs meanwhile).

Phases (each a Locust run; users x pace = the offered rate):
1. baseline: GET /healthz alone at the steady rate: what the server and the generator cost;
2. steady: the mix at the steady rate; throughput, p50/p95/p99 per route, answers by outcome;
3. soak: the mix at the same rate for --soak-minutes, every process's memory (RSS) printed
   every 30 s;
4. overload: 400 users asking as fast as they can for a minute, far past what two cores serve.

Targets (exit 1 if one is missed): no error and nothing shed at the steady rate and through
the soak; memory flat in every process through the soak (the mean of its last third within
max(5%, 8 MiB) of the mean of its second third; the first third is warm-up); under overload,
no timeout and no other error: every request not served is answered 429 or 503 with
Retry-After (the app sheds load, it does not time out silently), and some are still served.
Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from bench.matching import report_targets, target
from bench.processes import free_port, start, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVER_CORE, LOCUST_CORE = "0", "1"
USERS, PACE = 24, 1.0  # the steady rate: 24 users, each about one request a second
OVERLOAD_USERS = 400
SPAWN_RATE = 2  # users started a second: real salespeople do not all sign in at once
SAMPLE_EVERY_S = 30
MIX = ["Salesperson", "Crm"]  # Locust's user classes of real use


def flask(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


def book(env: dict[str, str], count: int, folder: Path) -> Path:
    """The users' script: salespeople and their accounts, the CRM's token and businesses."""
    from graph import StoreSettings, open_store
    from netweave import demo

    flask(env, "demo", "load", "--businesses", str(count))
    token = flask(env, "tokens", "create", "load-bench", "--scope", "write").strip().splitlines()[-1]
    store = open_store(StoreSettings(url=env["NETWEAVE_GRAPH_URL"]))
    try:
        people = [summary.salesperson.id for summary in store.list_salespeople()]
        accounts = {p: [b.id for b in store.list_businesses(salesperson_id=p, limit=None)] for p in people}
    finally:
        store.close()
    rows = demo.generate(demo.DEFAULT_SEED, count).rows
    businesses = [{k: v for k, v in row.items() if k not in ("partners", "knows") and v not in ("", None)}
                  for row in rows]  # fmt: skip
    config = folder / "load.json"
    config.write_text(json.dumps({
        "password": demo.DEMO_PASSWORD, "token": token, "businesses": businesses,
        "salespeople": [p for p in people if accounts[p]], "accounts": accounts,
    }))  # fmt: skip
    return config


def processes(root: psutil.Process) -> dict[str, psutil.Process]:
    """The service's processes by role: gunicorn master, gunicorn workers, the job worker."""
    found = {}
    for process in root.children(recursive=True):
        try:
            command = " ".join(process.cmdline())
            parent = process.parent()
            process.info_name = process.name()
        except psutil.Error:
            continue
        if process.info_name in ("sh", "bash", "dash"):  # the Procfile's shell wrappers
            continue
        if "gunicorn" in command:
            master = parent is None or "gunicorn" not in " ".join(parent.cmdline()) or parent.name() in ("sh", "bash")
            name = "gunicorn master" if master else f"gunicorn worker {process.pid}"
        elif re.search(r"flask .*worker", command):
            name = "job worker"
        else:
            continue
        found[name] = process
    return found


class MemorySampler(threading.Thread):
    """Every process's RSS (MiB) every SAMPLE_EVERY_S seconds, printed as it goes."""

    def __init__(self, service: dict[str, psutil.Process]):
        super().__init__(daemon=True)
        self.service = service
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.stop = threading.Event()

    def sample(self, started: float) -> None:
        rss = {}
        for name, process in self.service.items():
            try:
                rss[name] = process.memory_info().rss / 2**20
            except psutil.Error:
                rss[name] = float("nan")
        self.samples.append((time.monotonic() - started, rss))
        print(f"    {self.samples[-1][0] / 60:5.1f} min  " + "  ".join(f"{n} {v:6.1f}" for n, v in rss.items()),
              flush=True)  # fmt: skip

    def run(self) -> None:
        started = time.monotonic()
        self.sample(started)
        while not self.stop.wait(SAMPLE_EVERY_S):
            self.sample(started)
        self.sample(started)

    def flat(self) -> dict[str, tuple[float, float, bool]]:
        """Per process: mean RSS of the second and last thirds, and whether they agree."""
        third = len(self.samples) // 3
        verdict = {}
        for name in self.service:
            middle = [rss[name] for _, rss in self.samples[third : 2 * third]]
            last = [rss[name] for _, rss in self.samples[2 * third :]]
            a, b = sum(middle) / len(middle), sum(last) / len(last)
            verdict[name] = (a, b, b - a <= max(0.05 * a, 8.0))
        return verdict


def locust(base: str, config: Path, folder: Path, name: str, classes: list[str], users: int, pace: float,
           seconds: float) -> tuple[list[dict[str, str]], dict[str, dict[str, int]]]:  # fmt: skip
    """One Locust run; its per-route stats (Locust's CSV) and the answers by outcome."""
    outcomes = folder / f"{name}-outcomes.json"
    env = {**os.environ, "NETWEAVE_LOAD_CONFIG": str(config), "NETWEAVE_LOAD_PACE": str(pace),
           "NETWEAVE_LOAD_OUTCOMES": str(outcomes)}  # fmt: skip
    command = ["taskset", "-c", LOCUST_CORE, str(BIN / "locust"), "-f", str(ROOT / "bench/load/locustfile.py"),
               "--headless", "--only-summary", "-u", str(users), "-r", str(SPAWN_RATE),
               "-t", f"{seconds:.0f}s", "--stop-timeout", "10", "-H", base, "--csv", str(folder / name),
               "--loglevel", "WARNING", *classes]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if not outcomes.exists():
        raise SystemExit(f"locust ({name}) failed:\n{done.stderr[-3000:]}")
    with (folder / f"{name}_stats.csv").open() as handle:
        stats = list(csv.DictReader(handle))
    return stats, json.loads(outcomes.read_text())


def cpu_seconds(root: psutil.Process) -> float:
    """CPU time used so far by the service's processes (the root's descendants)."""
    total = 0.0
    for process in root.children(recursive=True):
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def report(name: str, seconds: float, stats: list[dict[str, str]], outcomes: dict[str, dict[str, int]],
           cpu: float) -> dict:  # fmt: skip
    print(f"\n[{name}]  {seconds:.0f} s; the service used {cpu / seconds:.0%} of a core")
    print(f"  {'route':42} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}  answers")
    totals: dict[str, int] = {}
    for row in stats:
        route = row["Name"] if row["Name"] == "Aggregated" else f"{row['Type']} {row['Name'].split(' ', 1)[-1]}"
        counts = outcomes.get(row["Name"], {})
        if row["Name"] == "Aggregated":
            counts = totals
        else:
            for outcome, count in counts.items():
                totals[outcome] = totals.get(outcome, 0) + count
        answers = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
        print(f"  {route[:42]:42} {float(row['Requests/s']):7.1f} {row['50%']:>7} {row['95%']:>7} {row['99%']:>7}  "
              f"{answers}")  # fmt: skip
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--businesses", type=int, default=1000)
    parser.add_argument("--steady-seconds", type=float, default=180)
    parser.add_argument("--soak-minutes", type=float, default=20)
    parser.add_argument("--overload-seconds", type=float, default=60)
    args = parser.parse_args()
    if missing := [tool for tool in ("taskset",) if not shutil.which(tool)]:
        raise SystemExit(f"missing: {', '.join(missing)}")

    with tempfile.TemporaryDirectory(prefix="netweave-load-") as name:
        folder = Path(name)
        (folder / "metrics").mkdir()
        port = free_port()
        env = {**os.environ, "NETWEAVE_GRAPH_URL": str(folder / "graph.sqlite3"),
               "NETWEAVE_QUEUE_PATH": str(folder / "queue.sqlite3"), "NETWEAVE_METRICS_DIR": str(folder / "metrics"),
               "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"), "HF_HUB_OFFLINE": "1",
               # every simulated salesperson signs in from 127.0.0.1: the per-address limit is for guessers
               "NETWEAVE_SIGN_IN_RATE_LIMIT": "10000 per minute",
               "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
        print(f"machine: {os.cpu_count()} cores; server on core {SERVER_CORE}, Locust on core {LOCUST_CORE}")
        config = book(env, args.businesses, folder)
        log = folder / "service.log"
        command = ["taskset", "-c", SERVER_CORE, str(BIN / "honcho"), "start", "--no-colour", "-p", str(port)]
        service = start(command, env, log)
        base = f"http://127.0.0.1:{port}"
        root = psutil.Process(service.pid)

        def phase(title: str, name: str, users: int, pace: float, seconds: float, classes: list[str] = MIX) -> dict:
            used = cpu_seconds(root)
            stats, outcomes = locust(base, config, folder, name, classes, users, pace, seconds)
            return report(title, seconds, stats, outcomes, cpu_seconds(root) - used)

        try:
            wait_until(lambda: get(base + "/healthz"), "the web process answers", service, log, 60)
            wait_until(lambda: re.search(r"^netweave_generation [1-9]", get(base + "/metrics"), re.M),
                       "the worker publishes suggestions", service, log, 600)  # fmt: skip
            print(f"service up: {args.businesses} businesses, {USERS} users at {PACE:g} request/s each (steady rate)")
            locust(base, config, folder, "warmup", MIX, USERS, PACE, 30)
            phase("baseline: GET /healthz at the steady rate", "baseline", USERS, PACE, 60, ["Health"])

            totals = phase("steady: the mix", "steady", USERS, PACE, args.steady_seconds)
            target("steady: every answer ok", set(totals) == {"ok"}, f"answers {totals}")

            print(f"\n[soak: the mix at the steady rate for {args.soak_minutes:g} min; RSS in MiB]")
            sampler = MemorySampler(processes(root))
            sampler.start()
            totals = phase("soak", "soak", USERS, PACE, args.soak_minutes * 60)
            sampler.stop.set()
            sampler.join()
            target("soak: every answer ok", set(totals) == {"ok"}, f"answers {totals}")
            for process, (middle, last, flat) in sampler.flat().items():
                target(f"soak: {process} memory flat", flat,
                       f"RSS {middle:.1f} MiB (2nd third) -> {last:.1f} MiB (last third)")  # fmt: skip

            totals = phase(f"overload: {OVERLOAD_USERS} users flat out", "overload", OVERLOAD_USERS, 0,
                           args.overload_seconds)  # fmt: skip
            target("overload: no timeout or error, the rest shed with Retry-After", set(totals) <= {"ok", "shed"},
                   f"answers {totals}")  # fmt: skip
            target("overload: requests still served", totals.get("ok", 0) > 0, f"{totals.get('ok', 0)} served")
        finally:
            stop(service)
            lines = log.read_text(errors="replace").splitlines()
            tracebacks = [n for n, line in enumerate(lines) if "Traceback" in line]
            for n in tracebacks[:3]:  # what went wrong, from the log that goes with the temporary folder
                print("\n".join(["  | " + line for line in lines[max(n - 2, 0) : n + 25]]))
            target("service log: no traceback", not tracebacks, f"{len(tracebacks)} tracebacks")
    return report_targets()


if __name__ == "__main__":
    sys.exit(main())
