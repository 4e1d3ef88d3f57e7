"""docs/api.md, run as written: its shell blocks, one after another, against the running
service (web and worker), on both backends. The walkthrough cannot rot unnoticed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.receiver import webhook_receiver
from tests.support.service import ROOT

pytestmark = pytest.mark.e2e
WALKTHROUGH = ROOT / "docs" / "api.md"


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", markdown, flags=re.M | re.S)


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    return {**server_env, "NETWEAVE_WEBHOOK_ALLOWLIST": "127.0.0.1"}  # the walkthrough's receiver is on loopback


def test_the_walkthrough_runs_as_written(service, server_env, tmp_path: Path):
    base, _ = service
    markdown = WALKTHROUGH.read_text()
    blocks = shell_blocks(markdown)
    assert len(blocks) >= 8
    script = "set -euo pipefail\n" + "\n".join(blocks)
    with webhook_receiver() as receiver:
        env = {**server_env, "NETWEAVE": base, "RECEIVER_URL": receiver.url, "PYTHONPATH": str(ROOT)}
        ran = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)  # fmt: skip
        assert ran.returncode == 0, f"stdout:\n{ran.stdout}\nstderr:\n{ran.stderr}"
        # The introduction's moves reached the receiver, and the page's own verify() accepts them.
        namespace: dict = {}
        exec(re.search(r"^```python\n(.*?)^```", markdown, flags=re.M | re.S).group(1), namespace)
        secret = json.loads((tmp_path / "hook.json").read_text())["secret"]
        moves = [namespace["verify"](r.body, r.headers, secret) for r in receiver.wait_for(4)]
    assert [m["data"]["status"] for m in moves] == ["proposed", "asked", "accepted", "introduced"]
    out = ran.stdout
    assert '"owner":"integration"' in out.replace(" ", "") and "whsec_" in out
    assert '{"id":"HS-5001","result":"created","errors":[]}' in out
    assert re.search(r'"id":"HS-5003","result":"rejected","errors":\[\{"field":"name"', out)
    assert '"result":"updated"' in out
    assert "Juniper & Vine Florals" in out  # the kind and city filters find it
    assert re.search(r"^1\. .+ \(0\.\d+\): .+", out, re.M), "a ranked match with its first reason"
    assert out.splitlines()[-1] in {"queued", "running", "done"}  # the refresh asked for on demand
    assert "only connect you if you both say yes" in out  # the draft asking the florist first
    assert "asked -> may go to accepted, declined, closed" in out
    assert "introduced -> may go to met, won, closed" in out
    assert '{"rating":5,"comment":"Booked two weddings together"}' in out
    assert "\n403\n" in out
    assert os.path.exists(tmp_path / "imported.json")
