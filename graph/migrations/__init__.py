"""Versioned schema migrations, one folder per backend.

Files are named NNN_description.(sql|cypher) and applied in order; each backend
records the names it has applied, so start-up applies only what is new.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]


def load_migrations(backend: str, suffix: str) -> list[Migration]:
    """The backend's migrations in order, each split into single statements."""
    migrations = []
    for path in sorted((MIGRATIONS_DIR / backend).glob(f"*{suffix}")):
        text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith(("--", "//")))
        statements = tuple(s.strip() for s in text.split(";") if s.strip())
        migrations.append(Migration(path.stem, statements))
    return migrations
