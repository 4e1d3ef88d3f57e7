"""The service as users run it: the Procfile's web and worker (started by honcho, as
`make run` does), over real HTTP."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest

from graph import StoreSettings
from netweave import demo

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode(), dict(response.headers)


def wait_until(check, what: str, process: subprocess.Popen, timeout: float = 120) -> object:
    """Poll `check` until it returns something truthy (bounded, never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited with {process.returncode} while waiting for {what}")
        try:
            if result := check():
                return result
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout}s")


@pytest.fixture
def server_env(store_settings: StoreSettings, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NETWEAVE_GRAPH_URL": store_settings.url,
        "NETWEAVE_NEO4J_USER": store_settings.user,
        "NETWEAVE_NEO4J_PASSWORD": store_settings.password,
        "NETWEAVE_QUEUE_PATH": str(tmp_path / "queue.sqlite3"),
        "NETWEAVE_METRICS_DIR": str(tmp_path / "metrics"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }


def flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def published_generation(base: str) -> int | None:
    _, text, _ = get(base + "/metrics")
    found = re.search(r"^netweave_generation (\d+)", text, re.M)
    return int(found.group(1).split(".")[0]) if found else None


@pytest.fixture
def service(server_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """What `make run` does: the demo loaded by the CLI, then the Procfile run by honcho."""
    loaded = flask(server_env, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "honcho"), "start", "--no-colour", "-p", str(port)],
        cwd=ROOT,
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get(base + "/healthz")[0] == 200, "the web process answers", process)
        wait_until(lambda: published_generation(base), "the worker publishes the first suggestions", process)
        yield base, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_demo_is_served_by_web_and_worker(service, backend):
    base, _ = service
    status, body, _ = get(base + "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    status, body, _ = get(base + "/readyz")
    assert (status, json.loads(body)) == (200, {"status": "ready", "checks": {"store": "ok", "queue": "ok"}})

    status, page, headers = get(base + "/", {"X-Request-ID": "trace-me-42"})
    assert status == 200 and headers["X-Request-ID"] == "trace-me-42"
    assert "320 customers" in page
    assert "Page 1 of 7" in page

    rows = demo.generate().rows
    dana = "dana.whitfield@netweave-demo.com"
    expected = [r["name"] for r in rows if "coffee" in r["name"].lower() and r["salesperson"] == dana]
    status, page, _ = get(base + f"/?q=Coffee&salesperson={quote(dana)}")
    assert status == 200
    assert f"{len(expected)} customer" in page
    assert all(html.escape(name) in page for name in expected)

    status, page, _ = get(base + "/customers/ACC-10001")
    assert status == 200
    assert "CRM id ACC-10001" in page
    assert "Partners with" in page
    assert "Suggested introductions" in page
    assert page.count("Why The Grand Lakeside Ballroom gains") >= 1

    _, metrics, _ = get(base + "/metrics")
    assert re.search(
        r'netweave_http_request_duration_seconds_count\{method="GET",route="/",status="200"\} [1-9]', metrics
    )
    assert re.search(r'netweave_job_duration_seconds_count\{kind="refresh_\w+",outcome="done"\} [1-9]', metrics), (
        "the worker's job timings reach the web's /metrics"
    )
    assert re.search(r'netweave_generation_suggestions\{kind="full"\} [1-9]', metrics)


def test_unknown_customers_are_404(service):
    base, _ = service
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(base + "/customers/NOPE-1")
    assert caught.value.code == 404


def test_an_import_while_it_runs_shows_refreshed_lists_without_a_restart(service, server_env, tmp_path):
    base, process = service
    newcomer = tmp_path / "newcomer.csv"
    newcomer.write_text(
        "id,name,owner,categories,description,customers,needs,city,region,metro,latitude,longitude\n"
        "NEW-1,Bluebird Blooms,dana.whitfield@netweave-demo.com,Florist,"
        "Wedding bouquets and reception flowers,engaged couples,referrals from wedding venues and planners,"
        "Minneapolis,MN,Twin Cities,44.97,-93.26\n"
    )
    before = published_generation(base)
    started = time.monotonic()
    imported = flask(server_env, "import", str(newcomer))
    assert imported.returncode == 0, imported.stderr
    assert "suggestions refresh in the background" in imported.stdout

    def newcomer_listed() -> str | None:
        status, page, _ = get(base + "/customers/NEW-1")
        return page if status == 200 and "Why Bluebird Blooms gains" in page else None

    page = wait_until(newcomer_listed, "the newcomer's suggestions", process, timeout=60)
    latency = time.monotonic() - started
    assert published_generation(base) > before
    assert "Wedding" in page or "Venue" in page or "Ballroom" in page
    # And the newcomer entered the lists it belongs in: some venue now suggests it.
    exported = json.loads(flask(server_env, "match", "export").stdout)
    assert any(s["id"] == "NEW-1" for entry in exported for s in entry["suggestions"])
    print(f"import to refreshed lists: {latency:.1f} s")


def test_web_processes_never_load_torch_or_the_model(service):
    base, process = service
    for path in ("/", "/customers/ACC-10001", "/healthz", "/readyz", "/metrics", "/?archived=1"):
        get(base + path)
    tree = psutil.Process(process.pid).children(recursive=True)
    web = [p for p in tree if any(part.endswith("/gunicorn") for part in p.cmdline()[:2])]
    worker = [p for p in tree if p.cmdline()[-1:] == ["worker"]]
    serving = [p for p in web if p.parent().pid in {w.pid for w in web}]
    assert len(serving) == 2 and len(worker) == 1, [p.cmdline() for p in tree]

    def maps(p: psutil.Process) -> str:
        return Path(f"/proc/{p.pid}/maps").read_text()

    assert "libtorch" in maps(worker[0]), "the worker holds the model (so the check below can fail)"
    for p in web:
        assert "libtorch" not in maps(p), f"gunicorn worker {p.pid} loaded torch"
