"""Turning untrusted input into clear errors: pydantic messages, NUL bytes, JSON parsing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, BeforeValidator, ValidationError

from jobhouse.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


def _integral(value: Any) -> Any:
    """JSON has one number type: 38.0 is the integer 38 (as JSON Schema says); 38.5 is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: An integer as JSON means it: ``38`` or ``38.0``, never ``"38"`` or ``true``.
JsonInt = Annotated[int, BeforeValidator(_integral)]
_MAX_DEPTH = 64


def parse_json(body: bytes) -> Any:
    """Parse a request body; malformed JSON is `InvalidRequest`."""
    if not body.strip():
        raise InvalidRequest("Request body must be a JSON object")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Malformed JSON: {exc.msg}") from None
    check_clean(value)
    return value


def check_clean(value: Any, where: str = "body", depth: int = 0) -> None:
    """Reject NUL characters anywhere (no store can keep them) and absurd nesting."""
    if depth > _MAX_DEPTH:
        raise InvalidRequest(f"{where} is nested too deeply (more than {_MAX_DEPTH} levels)")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidRequest(f"{where} must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise InvalidRequest(f"{where} must not contain NUL characters")
            check_clean(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_clean(item, where, depth + 1)


def describe(exc: ValidationError) -> str:
    """One readable sentence for the first problem pydantic found."""
    error = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"{loc} is required"
    if kind == "extra_forbidden":
        return f"unknown field {loc!r}"
    if kind in {"model_type", "model_attributes_type", "dict_type"} and not loc:
        return "expected a JSON object"
    message: str = error["msg"]
    return f"{loc}: {message}" if loc else message


def validate(model: type[M], data: Any, prefix: str, error: type[InvalidRequest] = InvalidRequest) -> M:
    """Validate `data` (parsed JSON) strictly: no coercion, no unknown fields.

    Problems raise `error` with a message like ``"<prefix>: limit: Input should be ..."``.
    """
    if not isinstance(data, Mapping):
        raise error(f"{prefix}: expected a JSON object")
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise error(f"{prefix}: {describe(exc)}") from None
