"""Overload: the Procfile's gunicorn answers requests that waited too long for a thread with
503 and Retry-After at once, instead of letting them time out; health checks and static files
still answer."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from tests.support.service import ROOT, free_port, get, wait_until


def procfile_web() -> str:
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    return line.removeprefix("web:").strip()


def fetch(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        return get(url)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def test_requests_that_waited_too_long_for_a_thread_are_shed_with_retry_after(server_env):
    port = free_port()
    env = {**server_env, "PORT": str(port), "WEB_CONCURRENCY": "1", "WEB_THREADS": "1",
           "NETWEAVE_SHED_AFTER_MS": "300"}  # fmt: skip
    web = subprocess.Popen(["bash", "-c", "exec " + procfile_web()], cwd=ROOT, env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get(base + "/healthz")[0] == 200, "gunicorn answers", web)
        # A client that sends half its headers holds the only thread; requests arriving
        # meanwhile wait in the worker's queue.
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)  # the thread has taken the slow connection
        answers: dict[str, tuple[int, str, dict[str, str]]] = {}
        paths = ("/api/v1/businesses", "/sign-in", "/healthz", "/static/api-docs.js")
        threads = [threading.Thread(target=lambda p=p: answers.__setitem__(p, fetch(base + p))) for p in paths]
        for thread in threads:
            thread.start()
            time.sleep(0.05)  # in this order in the queue
        time.sleep(0.6)  # every queued request has now waited over 300 ms
        slow.sendall(b"\r\n")
        assert slow.recv(4096).startswith(b"HTTP/1.1 200")
        slow.close()
        for thread in threads:
            thread.join(timeout=10)

        status, body, headers = answers["/api/v1/businesses"]
        assert (status, headers["Content-Type"]) == (503, "application/problem+json")
        assert int(headers["Retry-After"]) >= 1
        assert json.loads(body)["detail"].startswith("overloaded: this request waited")
        assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"]), "a refusal has an id to quote, too"
        status, body, headers = answers["/sign-in"]
        assert (status, "Netweave is busy" in body, int(headers["Retry-After"]) >= 1) == (503, True, True)
        assert answers["/healthz"][0] == 200  # health checks are never shed
        assert answers["/static/api-docs.js"][0] == 200  # nor a served page's script
        # The queue drained: the next requests are served as usual.
        assert fetch(base + "/sign-in")[0] == 200
        assert fetch(base + "/api/v1/businesses")[0] == 401  # no token: answered, not shed
        _, metrics, _ = fetch(base + "/metrics")
        shed = [line for line in metrics.splitlines() if line.startswith("netweave_shed_requests_total")]
        assert shed and float(shed[0].split()[-1]) == 2
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
