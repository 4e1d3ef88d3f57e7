"""Weekly-email benchmark: digests for 1,000 salespeople with 50 accounts each (50,000
businesses) on the embedded backend, delivered to an SMTP server on loopback (aiosmtpd, in a
process of its own). Target: under 60 s in all, with peak memory printed.

    make bench-digest
    python -m bench.digest [--salespeople 1000] [--accounts 50] [--seed 7]

Setup (not timed): the salespeople and their businesses written to a fresh embedded store, and
one generation of suggestion lists published as a refresh would (5 per business, as
NETWEAVE_MATCH_TOP_N; most pairs inside the book, one in five across books; scores and reasons
of realistic size). The digests read only what a refresh publishes, so matching is not what is
measured here (`make bench-matching` is).

Measured, each in a fresh process so that its peak memory is its own:
- baseline: as many messages, of the digests' average size, sent over one smtplib connection
  to the same server: what SMTP alone costs on this machine;
- digests: one run of `flask --app app digest send --week W` (choose, render, record, send,
  mark sent, for every salesperson);
- again: the same run a second time, which must send nothing (what the worker's check each
  minute costs once a week's digests are out).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

TARGET_S = 60.0
KINDS = ("Florist", "Wedding Venue", "Caterer", "Photographer", "Realtor", "Mortgage Broker", "Lawyer",
         "Accountant", "Fitness Gym", "Nutritionist", "Chiropractor", "Massage Therapy")  # fmt: skip
CITIES = ("Minneapolis", "Saint Paul", "Denver", "Austin", "Portland")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The SMTP server, in its own process: counts what it accepts, says how many when stdin closes.

_SERVER = """
import sys
from aiosmtpd.controller import Controller

class Count:
    accepted = 0
    async def handle_DATA(self, server, session, envelope):
        Count.accepted += 1
        return "250 OK"

controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
print(Count.accepted, flush=True)
"""


class SmtpServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen([sys.executable, "-c", _SERVER, str(self.port)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    def stop(self) -> int:
        """Stop the server; how many messages it accepted."""
        out, _ = self.process.communicate("", timeout=30)
        return int(out.strip().splitlines()[-1])


# Setup


def build_store(path: Path, salespeople: int, accounts: int, seed: int) -> str:
    """A fresh embedded store with the book and one published generation; returns the week."""
    from graph import BusinessRecord, Place, Salesperson, StoreSettings, open_store
    from graph.records import GenerationKind, Suggestion, SuggestionList

    rng = random.Random(seed)
    store = open_store(StoreSettings(url=str(path)))
    store.migrate()
    now = datetime.now(UTC)
    people = [Salesperson(f"rep{i:04d}@example.com", f"Rep {i:04d} Example", f"rep{i:04d}@example.com")
              for i in range(salespeople)]  # fmt: skip
    store.upsert_salespeople(people)
    records = []
    for p, person in enumerate(people):
        for a in range(accounts):
            kind = KINDS[(p + a) % len(KINDS)]
            records.append(BusinessRecord(
                f"B{p:04d}-{a:03d}", f"{rng.choice(('North', 'Lake', 'Summit', 'Cedar'))} {kind} {p}-{a}",
                person.id, description=f"A {kind.lower()} serving local families", categories=(kind,),
                place=Place(CITIES[p % len(CITIES)], "", "US"),
            ))  # fmt: skip
    for start in range(0, len(records), 5000):
        store.upsert_businesses(records[start : start + 5000], now - timedelta(days=rng.randint(1, 400)))
    ids = [r.id for r in records]
    generation = store.write(lambda tx: tx.begin_generation(GenerationKind.FULL, model="bench", rules_digest="r",
                                                            settings_digest="s", now=now))  # fmt: skip
    lists = []
    for index, business_id in enumerate(ids):
        book = index // accounts * accounts
        others = set()
        while len(others) < 5:
            across = rng.random() < 0.2
            other = rng.randrange(len(ids)) if across else book + rng.randrange(accounts)
            if other != index:
                others.add(other)
        scored = sorted(((rng.uniform(0.35, 0.98), ids[o]) for o in others), reverse=True)
        lists.append(SuggestionList(business_id, now, tuple(
            Suggestion(business_id, other, rank, score,
                       (f"{other} can send {business_id} clients who need it, the week they need it.",),
                       (f"{business_id} can send {other} customers who already asked for this.",), now)
            for rank, (score, other) in enumerate(scored, 1)
        )))  # fmt: skip
        if len(lists) == 5000:
            batch, lists = lists, []
            store.write(lambda tx, b=batch: tx.write_lists(generation.id, b))
    store.write(lambda tx: tx.write_lists(generation.id, lists))
    store.write(lambda tx: tx.publish_generation(generation.id, now, []))
    store.close()
    from netweave.services.digests import week_of

    return week_of(now)


# Measured runs (each in a fresh process)


def _peak_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: after fork and exec, Linux's
    ru_maxrss still counts the parent's size at the fork (here, the setup's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _mail_settings(port: int):
    from netweave.digest.mailer import MailSettings

    return MailSettings("127.0.0.1", port, "none", "", "", "Netweave <netweave@bench.example>")


def run_digests(store_path: str, port: int, week: str, out: multiprocessing.Queue) -> None:
    from graph import StoreSettings, open_store
    from netweave.services.digests import DigestSettings, send_digests

    store = open_store(StoreSettings(url=store_path))
    settings = DigestSettings(_mail_settings(port), secret_key="bench", public_url="https://netweave.example")
    started = time.perf_counter()
    report = send_digests(store, settings, week=week)
    seconds = time.perf_counter() - started
    sizes = [len(d.text) + len(d.html) for d in store.list_digests(week=week)]
    out.put({"seconds": seconds, "sent": len(report.sent), "empty": len(report.empty), "failed": len(report.failed),
             "peak_mib": _peak_mib(), "bytes": sum(sizes) // max(len(sizes), 1)})  # fmt: skip


def run_baseline(port: int, count: int, size: int, out: multiprocessing.Queue) -> None:
    from netweave.digest.mailer import Outbox

    body = ("An introduction worth making this week. " * (size // 41 + 1))[:size]
    started = time.perf_counter()
    with Outbox(_mail_settings(port)) as outbox:
        for i in range(count):
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "netweave@bench.example", f"rep{i}@example.com", "x"
            message.set_content(body)
            outbox.send(message)
    out.put({"seconds": time.perf_counter() - started, "sent": count, "peak_mib": _peak_mib()})


def in_fresh_process(target, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=target, args=(*args, out))
    process.start()
    result = out.get(timeout=1800)
    process.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--salespeople", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    total = args.salespeople * args.accounts
    with tempfile.TemporaryDirectory(prefix="netweave-bench-digest-") as folder:
        path = Path(folder) / "graph.sqlite3"
        print(f"setup: {args.salespeople} salespeople x {args.accounts} accounts = {total} businesses, "
              "one generation of 5 suggestions each (embedded store)", flush=True)  # fmt: skip
        started = time.perf_counter()
        week = build_store(path, args.salespeople, args.accounts, args.seed)
        print(f"setup done in {time.perf_counter() - started:.1f} s; week {week}", flush=True)

        server = SmtpServer()
        digests = in_fresh_process(run_digests, str(path), server.port, week)
        again = in_fresh_process(run_digests, str(path), server.port, week)
        accepted = server.stop()
        server = SmtpServer()
        baseline = in_fresh_process(run_baseline, server.port, digests["sent"], digests["bytes"])
        server.stop()

    per = digests["seconds"] / max(digests["sent"], 1) * 1000
    print(f"\n{'run':<34}{'messages':>9}{'seconds':>10}{'ms each':>9}{'peak MiB':>10}")
    print(
        f"{'baseline: smtplib, same size':<34}{baseline['sent']:>9}{baseline['seconds']:>10.2f}"
        f"{baseline['seconds'] / max(baseline['sent'], 1) * 1000:>9.2f}{baseline['peak_mib']:>10.0f}"
    )
    print(
        f"{'digests: choose, render, send':<34}{digests['sent']:>9}{digests['seconds']:>10.2f}"
        f"{per:>9.2f}{digests['peak_mib']:>10.0f}"
    )
    print(f"{'again: nothing left to send':<34}{again['sent']:>9}{again['seconds']:>10.2f}{'':>9}"
          f"{again['peak_mib']:>10.0f}")  # fmt: skip
    print(
        f"\nthe server accepted {accepted} messages for {args.salespeople} salespeople "
        f"({digests['empty']} with nothing new, {digests['failed']} failed); average digest {digests['bytes']} bytes"
    )
    ok = digests["seconds"] < TARGET_S and accepted == digests["sent"] == args.salespeople and again["sent"] == 0
    verdict = "met" if ok else "MISSED"
    print(
        f"target: every digest out in under {TARGET_S:.0f} s, exactly once: {verdict} "
        f"({digests['seconds']:.1f} s, {digests['seconds'] / max(baseline['seconds'], 1e-9):.1f}x the bare SMTP cost)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
