"""Schemathesis against the OpenAPI spec: no 5xx, every answer as the spec says.

The spec comes from the app factory itself (no server needed at collection);
the requests go to a real master with an admin token, and with no worker, so no
generated command ever runs.  The SSE endpoints are left out (they never end),
and the examples are bounded so the run stays short.
"""

from __future__ import annotations

import schemathesis
from cluster_helpers import Master
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from shoal.cluster.master.app import create_app
from shoal.cluster.master.settings import MasterSettings

SPEC = create_app(MasterSettings(db_url="sqlite://")).openapi()
schema = schemathesis.openapi.from_dict(SPEC).exclude(path_regex=r"/stream$|/events$")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_the_api_answers_every_generated_request_as_its_spec_says(
        case: schemathesis.Case, shared_master: Master) -> None:
    case.call_and_validate(base_url=shared_master.url, checks=CHECKS,
                           headers={"Authorization": f"Bearer {shared_master.token}"})
