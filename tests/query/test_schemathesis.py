"""Property-based run over the OpenAPI schema (schemathesis, in-process ASGI): no input makes a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from knowledge_plane.service.app import openapi_schema
from tests.query.support import KEYS, keys_env, settings_for

# The schema does not depend on the data: load it without starting a service, call the live one.
schema = schemathesis.openapi.from_dict(openapi_schema())


@pytest.fixture(scope="module")
def live_app(built, embedder):
    from knowledge_plane.service.app import create_app
    from knowledge_plane.settings import ServiceSettings

    app = create_app(settings_for(built), ServiceSettings(api_keys=keys_env(), rate_limit_per_minute=100_000,
                                                           rate_limit_per_actor_per_minute=100_000),
                     embedder)
    service = app.state.service
    service.start()  # schemathesis runs the lifespan too; a second start is a no-op
    assert service.wait_ready(60), service.checks
    yield app
    service.stop()


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case, live_app):
    case.call_and_validate(
        app=live_app, headers={"X-API-Key": KEYS["agents_dev"]},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
