"""The service as users run it: the Procfile's gunicorn command, over real HTTP."""

from __future__ import annotations

import html
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from graph import StoreSettings
from netweave import demo

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {process.stdout.read()}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


@pytest.fixture
def server_env(store_settings: StoreSettings) -> dict[str, str]:
    return {
        **os.environ,
        "NETWEAVE_GRAPH_URL": store_settings.url,
        "NETWEAVE_NEO4J_USER": store_settings.user,
        "NETWEAVE_NEO4J_PASSWORD": store_settings.password,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }


@pytest.fixture
def served(server_env: dict[str, str]) -> Iterator[str]:
    """The demo loaded by the CLI, then served exactly as the Procfile says."""
    for command in (["demo", "load"], ["match", "refresh"]):  # what `make run` does
        subprocess.run([sys.executable, "-m", "flask", "--app", "app", *command], cwd=ROOT, env=server_env, check=True)
    port = free_port()
    command = (ROOT / "Procfile").read_text().split("web:", 1)[1].strip()
    process = subprocess.Popen(
        ["sh", "-c", f"exec {command}"],
        cwd=ROOT,
        env={**server_env, "PORT": str(port), "WEB_CONCURRENCY": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/healthz", process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_demo_is_served_by_gunicorn(served, backend):
    status, body = get(served + "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "backend": backend, "businesses": 320}

    status, page = get(served + "/")
    assert status == 200
    assert "320 customers" in page
    assert "Page 1 of 7" in page

    rows = demo.generate().rows
    dana = "dana.whitfield@netweave-demo.com"
    expected = [r["name"] for r in rows if "coffee" in r["name"].lower() and r["salesperson"] == dana]
    status, page = get(served + f"/?q=Coffee&salesperson={quote(dana)}")
    assert status == 200
    assert f"{len(expected)} customer" in page
    assert all(html.escape(name) in page for name in expected)

    status, page = get(served + "/customers/ACC-10001")
    assert status == 200
    assert "CRM id ACC-10001" in page
    assert "Partners with" in page
    assert "Suggested introductions" in page
    assert page.count("Why The Grand Lakeside Ballroom gains") >= 1


def test_unknown_customers_are_404(served):
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(served + "/customers/NOPE-1")
    assert caught.value.code == 404
