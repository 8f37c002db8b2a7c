"""JSON responses, rendered to bytes once by orjson: a response model (`jobhouse.api.models`) as its fields,
anything else (the error envelope, the OpenAPI document) as it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from jobhouse.api.models import json_fields

_CONTENT_TYPE = (b"content-type", b"application/json")


class JSONResponse(Response):
    """A JSON body with its headers. Without headers of its own (most answers), the header list is
    made here, as Starlette would make it (length, then type) but without its general case."""

    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> None:
        if headers:
            super().__init__(content, status_code, headers)
            return
        self.status_code = status_code
        self.background = None
        self.body = body = self.render(content)
        self.raw_headers = [(b"content-length", str(len(body)).encode()), _CONTENT_TYPE]

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=json_fields)


class RenderedJSON(JSONResponse):
    """JSON already rendered to bytes (a body that never changes, such as the OpenAPI document)."""

    def render(self, content: Any) -> bytes:
        assert isinstance(content, bytes)
        return content


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(content, status_code=status, headers=headers)


def accepted(content: Any, location: str, created: bool = True) -> Response:
    """202 with the job's address; a replay of an idempotent request says so in a header."""
    headers = {"Location": location}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(content, 202, headers)
