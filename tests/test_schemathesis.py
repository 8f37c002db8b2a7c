"""Schemathesis against /openapi.json, on a real server: no 5xx, no response that breaks the schema.

Stateless: every operation with generated valid and invalid input. Stateful: sequences that
follow the links from a created job to reading and cancelling it.

Every check runs except "schema-valid data is accepted": some rules are not expressible in JSON
Schema (a kind's own input rules, an opaque cursor, an Idempotency-Key already used with another
body), and the API tests cover acceptance of valid requests.

The workspace's event stream (``GET /api/jobs/events``) is left out: a valid request to it never
ends, which is its point. `tests/test_events.py` covers its bad input; a job's own streams end with
their job (or at once, with a 404), so they are fuzzed like every other operation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.conftest import BACKENDS, backend_url
from tests.servers import Machine, ServerProcess, running_server

pytestmark = pytest.mark.slow

SETTINGS = settings(
    max_examples=22,  # per operation (22 of them), in two modes, on two stores
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture(scope="module", params=BACKENDS)
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, machine: Machine
) -> Iterator[ServerProcess]:
    """A server of its own, with kinds that stay quick and harmless whatever their input."""
    database = backend_url(request, request.param, tmp_path_factory.mktemp("fuzz") / "jobhouse.db")
    # Syncs unlimited: a rate limit answers a replayed case differently (429), which hypothesis calls flaky.
    # A generated long-poll may ask for up to 120 s on a job that is not due yet: held 2 s at most here.
    env = {"JOBHOUSE_SYNC_RATE": "0", "JOBHOUSE_LONG_POLL_MAX": "2"}
    with running_server(database, machine, app="tests.fuzz_kinds:jobs", env=env) as server:
        yield server


def call_timeout(case: Any) -> float:
    """How long one call may take. A job's event stream lasts until its job ends, which a job created
    to run later (a generated ``delayMs`` or ``runAt``) does not do while the test runs: schemathesis
    reads a stream until the call's timeout, then checks the events that came. They come at once (the
    job's state, then pings), so a few seconds of it show what minutes would. Any other call is
    answered within the long-poll cap (2 s here); its timeout only bounds a loaded machine."""
    return STREAM_SECONDS if case.path.endswith("/events") else 130


#: How long an event stream is read before schemathesis checks what it sent.
STREAM_SECONDS = 5.0


@pytest.fixture(scope="module")
def auth(fuzzed: ServerProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {asyncio.run(fuzzed.new_key())}"}


@pytest.fixture(scope="module")
def api(fuzzed: ServerProcess) -> OpenApiSchema:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json").exclude(path="/api/jobs/events")
    assert isinstance(schema, OpenApiSchema)
    return schema


@pytest.mark.timeout(240)  # every operation in turn: minutes on a loaded CI machine
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_every_operation_keeps_its_promises(api: OpenApiSchema, auth: dict[str, str], mode: GenerationMode) -> None:
    for result in api.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @SETTINGS
        def check(case: Any) -> None:
            if mode is GenerationMode.POSITIVE and case.headers and "Idempotency-Key" in case.headers:
                # A generated key may repeat with another body, which is a (correct) 422.
                case.headers["Idempotency-Key"] = uuid.uuid4().hex
            case.call_and_validate(headers=auth, timeout=call_timeout(case), excluded_checks=[positive_data_acceptance])

        check()


@pytest.mark.timeout(240)
def test_sequences_of_calls_keep_their_promises(api: OpenApiSchema, auth: dict[str, str]) -> None:
    class Machine(api.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": auth, "timeout": call_timeout(case)}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

    Machine.run(settings=settings(SETTINGS, max_examples=25, stateful_step_count=6))
