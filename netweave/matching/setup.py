"""Building the worker's Matcher from the app's settings (loading the model takes seconds)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graph import GraphStore
from netweave.matching.embedder import Embedder
from netweave.matching.refresh import Matcher
from netweave.matching.rules import DEFAULT_RULES_PATH, Rules
from netweave.matching.settings import MatchSettings


def match_settings(config: Mapping[str, Any]) -> MatchSettings:
    return MatchSettings(
        top_n=int(config["MATCH_TOP_N"]),
        max_km=float(config["MATCH_MAX_KM"]),
        across_books=str(config["MATCH_ACROSS_BOOKS"]).strip().lower() in ("1", "true", "yes", "on"),
    )


def build_matcher(config: Mapping[str, Any], store: GraphStore) -> Matcher:
    return Matcher(
        store,
        Embedder(
            config["EMBEDDING_MODEL"],
            batch_size=int(config["EMBEDDING_BATCH_SIZE"]),
            device=str(config["EMBEDDING_DEVICE"]),
        ),
        Rules.load(config["RULES_PATH"]),
        match_settings(config),
        far_search=config["FAR_SEARCH"],
        rules_path=Path(config["RULES_PATH"] or DEFAULT_RULES_PATH),
        parts=int(config["REFRESH_PARTS"]),
    )
