"""JSON responses, rendered to bytes once by orjson: a response model (`jobhouse.api.models`) as its fields,
anything else (the error envelope, the OpenAPI document) as it is."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from jobhouse.api.models import json_fields


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=json_fields)


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(content, status_code=status, headers=headers)


def accepted(content: Any, location: str, created: bool = True) -> Response:
    """202 with the job's address; a replay of an idempotent request says so in a header."""
    headers = {"Location": location}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(content, 202, headers)
