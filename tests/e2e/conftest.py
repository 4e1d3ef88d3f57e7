"""The running service (web and worker, as `make run` starts them) for end-to-end tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph import StoreSettings
from tests.support import service as support


@pytest.fixture
def server_env(store_settings: StoreSettings, tmp_path: Path) -> dict[str, str]:
    return support.server_env(store_settings, tmp_path)


@pytest.fixture
def service(server_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """The demo loaded, then web and worker running; (base URL, the honcho process)."""
    with support.running_service(server_env) as running:
        yield running
