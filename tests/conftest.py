"""Fixtures shared by every test: a graph store on each backend, and apps built on it.

The Neo4j backend needs a real server: `make test` starts one (graph/neo4j-server)
and sets NETWEAVE_TEST_NEO4J_URL. Without it, Neo4j-backed tests fail with a
message saying so; they are never skipped. To run only the embedded half locally:
`pytest -m "not neo4j"`. Redis-backed queue tests need a redis-server binary, which
`make test` installs when missing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Metrics of every process of a test session go to one throw-away folder; set before anything
# imports prometheus-client, which reads it once.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="netweave-metrics-"))

from flask import Flask
from flask.testing import FlaskCliRunner

from graph import GraphStore, StoreSettings, open_store
from netweave import create_app
from netweave.jobs import JobQueue, build_huey

BACKENDS = ["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)]


def neo4j_settings() -> StoreSettings:
    url = os.environ.get("NETWEAVE_TEST_NEO4J_URL")
    if not url:
        pytest.fail(
            "NETWEAVE_TEST_NEO4J_URL is not set: run the suite with `make test` (it starts a local Neo4j), "
            'or deselect the Neo4j half with -m "not neo4j"',
            pytrace=False,
        )
    return StoreSettings(
        url=url,
        user=os.environ.get("NETWEAVE_TEST_NEO4J_USER", "neo4j"),
        password=os.environ.get("NETWEAVE_TEST_NEO4J_PASSWORD", "netweave-test"),
    )


@pytest.fixture(scope="session")
def neo4j_store() -> Iterator[GraphStore]:
    store = open_store(neo4j_settings())
    store.driver.verify_connectivity()
    store.migrate()
    yield store
    store.close()


def wipe_neo4j(store: GraphStore) -> None:
    """Empty the test database; the schema (constraints, indexes) stays."""
    with store.driver.session(database=store.database) as session:  # batches: a bench may have left a big graph
        session.run(
            "MATCH (n) WHERE NOT n:SchemaMigration AND NOT n:SchemaLock"
            " CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 2000 ROWS"
        ).consume()
        session.run("MERGE (:MatchState {id: 'current'})").consume()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreSettings:
    if backend == "embedded":
        return StoreSettings(url=str(tmp_path / "graph.sqlite3"))
    store = request.getfixturevalue("neo4j_store")
    wipe_neo4j(store)
    return neo4j_settings()


@pytest.fixture
def store(store_settings: StoreSettings, backend: str, request: pytest.FixtureRequest) -> Iterator[GraphStore]:
    if backend == "neo4j":
        shared = request.getfixturevalue("neo4j_store")
        shared.migrate()
        yield shared
        return
    embedded = open_store(store_settings)
    embedded.migrate()
    yield embedded
    embedded.close()


def app_config(store_settings: StoreSettings, folder: Path) -> dict[str, str | bool]:
    return {
        "TESTING": True,
        "GRAPH_URL": store_settings.url,
        "NEO4J_USER": store_settings.user,
        "NEO4J_PASSWORD": store_settings.password,
        "QUEUE_PATH": str(folder / "queue.sqlite3"),
        "JOB_DEBOUNCE_SECONDS": "0",
        "METRICS_DIR": os.environ["PROMETHEUS_MULTIPROC_DIR"],
    }


@pytest.fixture
def app(store_settings: StoreSettings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Flask]:
    app = create_app(app_config(store_settings, tmp_path))
    if "embedder" in request.fixturenames:  # share the session's model instead of loading another
        from netweave.jobs import get_runner
        from netweave.matching.refresh import Matcher
        from netweave.matching.rules import Rules

        get_runner(app)._matcher = Matcher(
            app.extensions["netweave.store"], request.getfixturevalue("embedder"), Rules.load(app.config["RULES_PATH"])
        )
    yield app
    app.extensions["netweave.store"].close()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def jobs(store: GraphStore, tmp_path: Path) -> JobQueue:
    """A real queue (a SQLite file) whose messages nobody consumes: tests run refreshes themselves."""
    queue = JobQueue(store, build_huey({"QUEUE_PATH": str(tmp_path / "jobs.sqlite3")}), debounce_seconds=0)
    queue.register(lambda job_id: None, lambda delivery_id: None)
    return queue


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2, loaded once per test session."""
    from netweave.matching.embedder import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def rules():
    from netweave.matching.rules import Rules

    return Rules.load()


@pytest.fixture
def matcher(store, embedder, rules):
    from netweave.matching.refresh import Matcher

    return Matcher(store, embedder, rules)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port for the session (`make test` installs it)."""
    from tests.support.redis import RedisServer

    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url
