"""The service as users run it, for end-to-end tests: the Procfile's web and worker (started
by honcho, as `make run` does) on a free loopback port, and small HTTP helpers."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from graph import StoreSettings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode(), dict(response.headers)


class SignedIn:
    """A browser-like client over real HTTP (cookies kept) that signed in through the form."""

    def __init__(self, base: str, login: str, password: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        _, page, _ = self.get("/sign-in")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "login": login, "password": password}).encode()
        with self.opener.open(urllib.request.Request(base + "/sign-in", data=form), timeout=10) as response:
            assert urllib.parse.urlsplit(response.url).path == "/", "signed in and sent to Today"

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        request = urllib.request.Request(self.base + path, headers=headers or {})
        with self.opener.open(request, timeout=10) as response:
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


def server_env(store_settings: StoreSettings, tmp_path: Path) -> dict[str, str]:
    """The environment of a service on `store_settings`, its queue and metrics in `tmp_path`."""
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


@contextmanager
def running_service(server_env: dict[str, str], *, demo: bool = True) -> Iterator[tuple[str, subprocess.Popen]]:
    """What `make run` does: the demo loaded by the CLI (unless `demo` is False), then the
    Procfile run by honcho; yields its base URL once the worker has published suggestions.
    The service's output is read as it comes (a full pipe would stall it) and its last lines
    are printed when it stops, which pytest shows beside a failed test."""
    if demo:
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
    output: deque[str] = deque(maxlen=300)
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
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
        reader.join(timeout=10)
        print(f"--- the service's last {len(output)} lines of output ---\n" + "".join(output))
