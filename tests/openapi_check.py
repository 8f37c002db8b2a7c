"""Every response the API tests get is checked against the server's own ``/openapi.json``.

`ResponseCheck` is an httpx response event hook (the ``client`` and ``idle_client`` fixtures install
it, through `tests.helpers.api_client`). For each response from its jobhouse server it finds the
operation by method and path template, then the documented status, and validates the JSON body
against that response's schema (OpenAPI 3.1 / JSON Schema 2020-12, formats checked). A status the
operation does not list, a field a closed shape does not have, a missing field, a wrong type or format:
the request raises `AssertionError` in the test, and the check fails the test again at teardown in
case the test swallowed it.

A request outside the document must still be answered the documented way: an error in the envelope
(the ``Error`` schema), whether the path is unknown (404) or the method (405). Skipped, on purpose:

- the operational routes that are not in the document (`UNDOCUMENTED`): the document itself and the
  health and readiness probes and the Prometheus scrape, which are for operators, load balancers
  and monitoring, not API clients;
- ``HEAD`` requests, which have no body to check;
- the frames of event streams (``text/event-stream``), which may never end: only their status and
  content type are checked here; `Document.event_data` gives the schema their data is checked
  against by the tests that read them;
- requests to any other host than the server the check is for (no jobhouse server answered them).
"""

from __future__ import annotations

import collections
import json
import re
from typing import Any

import httpx
from jsonschema.exceptions import relevance
from jsonschema.protocols import Validator
from openapi_schema_validator import OAS31Validator, oas31_format_checker

#: Routes a jobhouse server serves outside its document, on purpose; their responses are not checked.
UNDOCUMENTED = frozenset({"/openapi.json", "/healthz", "/readyz", "/metrics"})
#: What the checks of this session covered: (path template, method, status) → responses checked.
COVERED: collections.Counter[tuple[str, str, str]] = collections.Counter()
_ERROR = {"$ref": "#/components/schemas/Error"}


class Document:
    """One server's OpenAPI document, ready for lookups: its path templates as patterns, and a
    validator per schema (made once)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        # A template segment is one path segment, as Starlette matches it; fixed paths are tried first.
        self.templates = sorted(
            ((re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", path) + "$"), path) for path in spec["paths"]),
            key=lambda entry: entry[1].count("{"),
        )
        self._validators: dict[str, Validator] = {}

    def template(self, path: str) -> str | None:
        return next((template for pattern, template in self.templates if pattern.match(path)), None)

    def event_data(self, path: str) -> dict[str, Any]:
        """The schema of the events' data on the stream at `path`."""
        template = self.template(path)
        assert template is not None, path
        stream = self.spec["paths"][template]["get"]["responses"]["200"]["content"]["text/event-stream"]
        schema: dict[str, Any] = stream["schema"]["properties"]["data"]["contentSchema"]
        return schema

    def problems(self, schema: dict[str, Any], body: Any) -> list[str]:
        """What is wrong with `body` for `schema` (a schema of this document), best first."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            root = {**schema, "components": self.spec["components"]}
            self._validators[key] = OAS31Validator(root, format_checker=oas31_format_checker)
        errors = sorted(self._validators[key].iter_errors(body), key=relevance)
        return [f"{error.json_path}: {error.message}" for error in errors]


#: The documents of the servers checked, by origin; fetched once per server.
_DOCUMENTS: dict[str, Document] = {}


async def document_of(origin: str) -> Document:
    """The document of the server at `origin` (fetched once: the checked servers live for the session)."""
    if origin not in _DOCUMENTS:
        async with httpx.AsyncClient(timeout=30) as plain:
            response = await plain.get(origin + "/openapi.json")
        assert response.status_code == 200, response.text
        _DOCUMENTS[origin] = Document(response.json())
    return _DOCUMENTS[origin]


def origin_of(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


class ResponseCheck:
    """The response hook for one server: each response must be one its document describes."""

    def __init__(self, base_url: str) -> None:
        self.origin = origin_of(httpx.URL(base_url))
        #: (path template, method, status) of every response checked, in order.
        self.checked: list[tuple[str, str, str]] = []
        self.problems: list[str] = []

    async def __call__(self, response: httpx.Response) -> None:
        request = response.request
        if request.method == "HEAD" or origin_of(request.url) != self.origin:
            return
        if request.url.path in UNDOCUMENTED:
            return
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            problem = await self.stream_problem(response)
        else:
            await response.aread()
            problem = await self.problem(response)
        if problem is not None:
            problem = f"{request.method} {request.url.path} → {response.status_code}: {problem}"
            self.problems.append(problem)
            raise AssertionError(f"The response breaks /openapi.json: {problem}")

    async def problem(self, response: httpx.Response) -> str | None:
        """What makes `response` one the document does not describe, or None."""
        document = await document_of(self.origin)
        method = response.request.method.lower()
        status = str(response.status_code)
        template = document.template(response.request.url.path)
        operation = None if template is None else document.spec["paths"][template].get(method)
        if operation is None:
            # Not an operation of the document: an unknown path (404) or method (405), or a refusal
            # before routing (413): always an error, in the envelope.
            if response.status_code < 400:
                return "an operation the document does not have answered with success"
            schema: dict[str, Any] | None = _ERROR
            template = template or "(not in the document)"
        else:
            documented = operation["responses"].get(status)
            if documented is None:
                return f"status {status} is not documented (it lists {', '.join(operation['responses'])})"
            schema = documented.get("content", {}).get("application/json", {}).get("schema")
        COVERED[(template, method, status)] += 1
        self.checked.append((template, method, status))
        if schema is None:
            return None if not response.content else "a body where the document has none"
        if not response.headers.get("content-type", "").startswith("application/json"):
            return f"content-type {response.headers.get('content-type')!r}, not application/json"
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            return f"the body is not JSON: {exc}"
        problems = document.problems(schema, body)
        return None if not problems else "; ".join(problems[:5])

    async def stream_problem(self, response: httpx.Response) -> str | None:
        """What makes an event stream one the document does not describe, or None."""
        document = await document_of(self.origin)
        method = response.request.method.lower()
        status = str(response.status_code)
        template = document.template(response.request.url.path)
        operation = None if template is None else document.spec["paths"][template].get(method)
        if operation is None or template is None:
            return "an event stream from an operation the document does not have"
        documented = operation["responses"].get(status, {})
        if "text/event-stream" not in documented.get("content", {}):
            return f"an event stream where the document has no text/event-stream for status {status}"
        COVERED[(template, method, status)] += 1
        self.checked.append((template, method, status))
        return None

    def assert_clean(self) -> None:
        """Fail if any response broke the document, even one whose error the test caught."""
        assert not self.problems, self.problems


def response_check(client: httpx.AsyncClient) -> ResponseCheck:
    """The check installed on `client`."""
    checks = [hook for hook in client.event_hooks["response"] if isinstance(hook, ResponseCheck)]
    assert len(checks) == 1, "this client checks no responses"
    return checks[0]
