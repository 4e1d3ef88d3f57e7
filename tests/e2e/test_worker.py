"""The worker process as the Procfile runs it: killed in the middle of a job, restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graph import StoreSettings, open_store
from graph.records import JobStatus

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture
def env(store_settings: StoreSettings, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NETWEAVE_GRAPH_URL": store_settings.url,
        "NETWEAVE_NEO4J_USER": store_settings.user,
        "NETWEAVE_NEO4J_PASSWORD": store_settings.password,
        "NETWEAVE_QUEUE_PATH": str(tmp_path / "queue.sqlite3"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "NETWEAVE_METRICS_DIR": str(tmp_path / "metrics"),
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )


def wait_for(check, what: str, timeout: float = 180) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


def test_a_job_cut_short_by_a_killed_worker_runs_again_when_a_worker_returns(env, store_settings, tmp_path):
    loaded = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "demo", "load", "--businesses", "1500"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    store = open_store(store_settings)
    log = tmp_path / "worker.log"
    try:
        first = start_worker(env, log)
        running = wait_for(lambda: store.list_jobs(status=JobStatus.RUNNING), "a job running")[0]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert store.get_job(running.id).status is JobStatus.RUNNING, "left running by the dead worker"
        assert store.published_generation() is None, "nothing half-published"

        second = start_worker(env, log)
        try:

            def settled() -> bool:
                jobs = store.list_jobs()
                return bool(jobs) and all(j.status in (JobStatus.DONE, JobStatus.FAILED) for j in jobs)

            wait_for(settled, "every job done")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
        again = store.get_job(running.id)
        assert (again.status, again.attempts) == (JobStatus.DONE, 2), log.read_text()[-3000:]
        assert all(job.status is JobStatus.DONE for job in store.list_jobs()), log.read_text()[-3000:]
        assert store.pending_changes() == []
        generation = store.published_generation()
        assert generation is not None and generation.lists == 1500
        assert "was running when its worker stopped; queued again" in log.read_text()
    finally:
        store.close()
