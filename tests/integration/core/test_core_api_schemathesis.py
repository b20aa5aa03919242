"""The running core's API against its own OpenAPI document, fuzzed by schemathesis: every
operation, valid and invalid inputs (bounded: ``EXAMPLES`` per operation and mode, a fixed
seed), every answer checked against the document -- status code documented, body matching
its schema (the one 422 shape), no 5xx, invalid input refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.conftest import TestPki
from tests.support.core_process import CoreProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXAMPLES = 25
SEED = 14
#: Valid and invalid inputs. One exception, stated here: a POST that matches the schema may
#: still be refused with the documented 422 by the rules that need the clock or the core's
#: configuration ("start is in the past", [dispatch] max_duration_s below the schema's day);
#: no JSON Schema can say "not before now". Likewise an aFRR setpoint for a service id that
#: does not exist is the documented 404 (no schema can say which ids exist). Every other
#: answer must be what the schema says.
CONFIG = """
[generation]
mode = "all"

[[operations]]
include-path-regex = "/afrr-setpoints$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
include-path = "/api/v1/dispatches"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "409", "422"]
"""


def _fuzz(document: dict[str, Any], base_url: str, token: str) -> list[str]:
    """Each operation: ``EXAMPLES`` cases; the failures schemathesis finds, one line each."""
    config = schemathesis.config.SchemathesisConfig.from_str(CONFIG)
    schema = schemathesis.openapi.from_dict(document, config=config)
    auth = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @seed(SEED)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, headers=auth)

        try:
            run()
        except Exception as exc:  # schemathesis' failure group, after hypothesis shrank it
            failures.append(f"{operation.label}: {exc}")
    return failures


async def test_schemathesis_finds_no_failure_in_the_running_api(
    tmp_path: Path, pki: TestPki
) -> None:
    async with CoreProcess(tmp_path / "core", pki.layout, stations=[]) as core:
        async with httpx.AsyncClient(base_url=core.api_url, timeout=10) as http:
            document = (await http.get("/openapi.json")).json()
        failures = await asyncio.to_thread(_fuzz, document, core.api_url, core.token)
    assert failures == [], "\n\n".join(failures)
