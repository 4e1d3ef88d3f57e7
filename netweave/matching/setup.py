"""The matcher's place in the app: built on first use (loading the model takes seconds)."""

from __future__ import annotations

from flask import current_app

from netweave.matching import Embedder, Matcher, MatchSettings, Rules
from netweave.store import get_store

_EXTENSION = "netweave.matcher"


def get_matcher() -> Matcher:
    """The current app's matcher, configured from app.config."""
    matcher = current_app.extensions.get(_EXTENSION)
    if matcher is None:
        config = current_app.config
        settings = MatchSettings(top_n=int(config["MATCH_TOP_N"]), max_km=float(config["MATCH_MAX_KM"]))
        matcher = Matcher(get_store(), Embedder(config["EMBEDDING_MODEL"]), Rules.load(config["RULES_PATH"]), settings)
        current_app.extensions[_EXTENSION] = matcher
    return matcher
