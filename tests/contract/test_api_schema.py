"""Schemathesis against the API's own OpenAPI document, on both backends: generated requests
(valid and invalid) for every operation must never get a 5xx, and every answer must match
what the document says of it (status, content type, headers, schema)."""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings

from graph import Salesperson
from graph.records import TokenScope
from netweave.services import tokens
from netweave.services.access import Viewer

DANA = "dana@example.com"


@pytest.fixture
def api_schema(app: Flask) -> schemathesis.BaseSchema:
    app.config["API_RATE_LIMIT"] = "1000000 per minute"
    # Valid by the schema is not always valid by the rules (an email's form, two different ids):
    # those answers are 422 problems, which the document lists.
    config = schemathesis.Config.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 401, 403, 404, 409, 412, 422]}}}
    )
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)


@pytest.fixture
def auth(app: Flask) -> dict[str, str]:
    """An integration's admin token, and a small book for the ids the generator may hit."""
    store = app.extensions["netweave.store"]
    store.upsert_salespeople([Salesperson(DANA, "Dana Reyes")])
    secret = tokens.create_token(store, Viewer.system(), "schemathesis", [TokenScope.ADMIN]).secret
    return {"Authorization": f"Bearer {secret}"}


def test_every_operation_answers_as_documented(api_schema, auth):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        # The same examples every run (CI must not flake); 100 per operation, valid and invalid.
        @settings(max_examples=100, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)  # fmt: skip
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=auth)

        try:
            answers_as_documented()
        except Exception as failure:
            raise AssertionError(f"{operation.label}: {failure}") from failure
