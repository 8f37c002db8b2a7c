"""Turning untrusted input into clear errors: pydantic messages, NUL bytes, JSON parsing."""

from __future__ import annotations

import json
import re
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
#: The integers every store keeps exactly (orjson's range); longer ones are refused, not rounded.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_LONG_NUMBER = re.compile(rb"\d{19,}")


def parse_json(body: bytes) -> Any:
    """Parse a request body; malformed JSON is `InvalidRequest`.

    orjson keeps integers exactly from -2**63 to 2**64-1 but turns longer ones into floats, which
    would echo ``18446744073709551616`` back as ``1.8446744073709552e+19``. So a body with a run of
    19 digits or more is parsed exactly (by the standard library) and an integer outside that range
    is refused with a clear 400, never silently changed.
    """
    if not body.strip():
        raise InvalidRequest("Request body must be a JSON object")
    try:
        value = orjson.loads(body) if not _LONG_NUMBER.search(body) else json.loads(body, parse_constant=_no_constant)
    except (orjson.JSONDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"Malformed JSON: {exc.msg}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest(f"Malformed JSON: {exc}") from None
    check_clean(value)
    return value


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_clean(value: Any, where: str = "body", depth: int = 0) -> None:
    """Reject NUL characters anywhere (no store can keep them) and absurd nesting."""
    if depth > _MAX_DEPTH:
        raise InvalidRequest(f"{where} is nested too deeply (more than {_MAX_DEPTH} levels)")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidRequest(f"{where} must not contain NUL characters")
        if not value.isascii() and not _is_unicode(value):
            raise InvalidRequest(f"{where} holds a lone surrogate (\\ud800-\\udfff), which is not text")
    elif isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        raise InvalidRequest(f"{where} holds an integer beyond 64 bits ({value}); send it as a string")
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
