"""Reading requests: the API key, the JSON body (size-limited), and query parameters.

Every parameter is checked strictly; a bad one is a 400 that names it. Unknown query parameters
are ignored, so cache-busting suffixes and the like do no harm.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request

from jobhouse.clock import from_micros, to_micros
from jobhouse.errors import InvalidRequest, NotAuthenticated, PayloadTooLarge
from jobhouse.ids import parse_id
from jobhouse.keys import check_key, key_id_of
from jobhouse.store.base import Cursor
from jobhouse.validation import parse_json

if TYPE_CHECKING:
    from jobhouse.runtime import Runtime

_DIGITS = re.compile(r"^[0-9]{1,9}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_TIMEOUT_MS = 120_000
_TEXT_MAX = 200


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _key(request: Request) -> str | None:
    """The API key the request sends (``X-API-Key``, else ``Authorization: Bearer``), if any."""
    key = request.headers.get("x-api-key")
    if key is None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            key = credentials.strip()
    return key


async def workspace(request: Request) -> str:
    """The workspace of the request's key (``Authorization: Bearer`` or ``X-API-Key``)."""
    key = _key(request)
    if not key:
        raise NotAuthenticated("Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    return await check_key(runtime(request).keys, key.strip())


def owner(request: Request) -> str:
    """The id of the request's key (once `workspace` accepted it): what its long-polls and event
    streams count against (setting `max_waits_per_key`). Never the secret."""
    return key_id_of(_key(request) or "") or ""


async def json_body(request: Request) -> Any:
    """The parsed JSON body; over the size limit is 413, malformed is 400."""
    return parse_json(await _body(request))


async def optional_json_object(request: Request, what: str) -> dict[str, Any]:
    """The body, a JSON object, or {} when there is none (any other JSON value is a 400 naming `what`)."""
    body = await _body(request)
    if not body.strip():
        return {}
    parsed = parse_json(body)
    if not isinstance(parsed, dict):
        raise InvalidRequest(f"Invalid {what}: the body must be a JSON object")
    return parsed


async def _body(request: Request) -> bytes:
    """The body, read up to the size limit (413 beyond it)."""
    limit = runtime(request).settings.max_body
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body too large: the limit is {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body too large: the limit is {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def idempotency(request: Request, body: Any = None) -> tuple[str | None, str]:
    """The request's ``Idempotency-Key`` (or None) and the fingerprint of what it asks for (only
    with a key: without one, nothing is compared)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None, ""
    if not _IDEMPOTENCY_KEY.match(key):
        raise InvalidRequest("Invalid Idempotency-Key: 1-255 visible ASCII characters")
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    fingerprint = hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + canonical).hexdigest()
    return key, fingerprint


def text(request: Request, name: str) -> str | None:
    """An optional text parameter; empty means absent."""
    value = request.query_params.get(name)
    if not value:
        return None
    if len(value) > _TEXT_MAX or "\x00" in value:
        raise InvalidRequest(f"Invalid {name}: must be 1-{_TEXT_MAX} characters without NUL")
    return value


def integer(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not _DIGITS.match(value) or not low <= int(value) <= high:
        raise InvalidRequest(f"Invalid {name}: must be an integer from {low} to {high}")
    return int(value)


def wait_timeout(request: Request) -> float:
    """Seconds to long-poll for: `wait=done` with `timeout_ms` (0-120000); 0 without `wait`."""
    if not request.scope["query_string"]:  # a plain read, the usual poll
        return 0.0
    wait = request.query_params.get("wait")
    timeout_ms = integer(request, "timeout_ms", 0, 0, MAX_TIMEOUT_MS)
    if wait is None:
        return 0.0
    if wait != "done":
        raise InvalidRequest("Invalid wait: the only supported value is 'done'")
    return timeout_ms / 1000


def job_id(request: Request, name: str) -> str:
    """The path's job id; anything that is not a UUID cannot name a job, so it is a 404 later."""
    raw: str = request.path_params[name]
    return parse_id(raw) or raw


def encode_cursor(cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    raw = f"{to_micros(cursor.created_at)}:{cursor.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(request: Request) -> Cursor | None:
    value = request.query_params.get("cursor")
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        micros, _, job = raw.partition(":")
        canonical = parse_id(job)
        if canonical is None or not micros.isdigit():
            raise ValueError(raw)
        return Cursor(from_micros(int(micros)), canonical)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise InvalidRequest("Invalid cursor: pass back the nextCursor of a previous page") from None
