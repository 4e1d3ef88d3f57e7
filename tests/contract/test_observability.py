"""Logs, request ids, metrics and readiness, as operators see them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from netweave.jobs import get_jobs

ROOT = Path(__file__).resolve().parents[2]


def test_every_response_carries_a_request_id(app):
    client = app.test_client()
    given = client.get("/healthz", headers={"X-Request-ID": "crm-sync-7f3a"})
    assert given.headers["X-Request-ID"] == "crm-sync-7f3a"
    made = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    unsafe = client.get("/healthz", headers={"X-Request-ID": "bad id; drop table"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe), "an id that is not a plain token is replaced"


def test_metrics_cover_requests_the_queue_and_the_published_generation(app):
    client = app.test_client()
    client.get("/sign-in")
    get_jobs(app).refresh_changes()
    text = client.get("/metrics").get_data(as_text=True)
    counted = r'netweave_http_request_duration_seconds_count\{method="GET",route="/sign-in",status="200"\} [1-9]'
    assert re.search(counted, text)
    assert 'netweave_jobs_queued{kind="refresh_changes"} 1.0' in text
    assert "netweave_queue_messages 1.0" in text
    assert "netweave_pending_changes 0.0" in text
    assert "netweave_generation_suggestions" in text
    assert not re.search(r"^netweave_generation \d", text, re.M), "none published yet"


def test_readiness_checks_the_store_and_the_queue(app, monkeypatch):
    client = app.test_client()
    assert client.get("/readyz").get_json() == {"status": "ready", "checks": {"store": "ok", "queue": "ok"}}

    def broken() -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(app.extensions["netweave.store"], "ping", broken)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.get_json()["checks"] == {"store": "error: OSError", "queue": "ok"}


def test_logs_can_be_json_lines_with_the_request_id(tmp_path):
    script = (
        "from netweave import create_app\n"
        "app = create_app()\n"
        "app.test_client().get('/healthz', headers={'X-Request-ID': 'trace-123'})\n"
    )
    env = {
        **os.environ,
        "NETWEAVE_LOG_FORMAT": "json",
        "NETWEAVE_GRAPH_URL": str(tmp_path / "graph.sqlite3"),
        "NETWEAVE_METRICS_DIR": str(tmp_path / "metrics"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert lines, done.stderr
    request = next(line for line in lines if line["logger"] == "netweave.web")
    assert request["level"] == "INFO" and request["request_id"] == "trace-123"
    assert re.fullmatch(r"GET /healthz 200 [\d.]+ ms", request["message"])
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_a_fresh_process_answers_its_first_requests_on_many_threads_at_once(app, monkeypatch):
    """A gunicorn worker makes its metrics on first use; a page's script and style sheet come
    in on several threads at once, and each must be answered, not failed by a race to make them."""
    from prometheus_client import CollectorRegistry

    from netweave import observability

    registry = CollectorRegistry()  # the fresh process's registry
    made = []

    class SlowToMake(observability.Metrics):
        def __init__(self) -> None:
            time.sleep(0.05)  # widens the window every racing thread would enter
            super().__init__(registry)
            made.append(self)

    monkeypatch.setattr(observability, "_metrics", None)
    monkeypatch.setattr(observability, "Metrics", SlowToMake)
    paths = ["/static/app.js", "/static/netweave.css", "/static/api-docs.js", "/healthz"] * 2
    start = threading.Barrier(len(paths))

    def fetch(path: str) -> int:
        start.wait()
        return app.test_client().get(path).status_code

    with ThreadPoolExecutor(len(paths)) as pool:
        statuses = list(pool.map(fetch, paths))
    assert statuses == [200] * len(paths)
    assert len(made) == 1 and observability.metrics() is made[0], "one set of metrics for the process"
