"""How JSON values are stored: encoded once, to bytes, the same way on every store.

No store keeps the NUL character in JSON (PostgreSQL's jsonb refuses ``\\u0000``), and the API
refuses it in what clients send. A handler's result or error may still hold one: such a value is
cleaned, on the *values* (each NUL in a string or key becomes U+FFFD), never on the encoded text,
so a string that merely spells ``\\u0000`` (a backslash, a ``u`` and four zeros) comes back as it
went in. The common case, no NUL anywhere, costs one `orjson.dumps` and a byte search.
"""

from __future__ import annotations

from typing import Any

import orjson

_NUL = b"\\u0000"


def encode(value: Any) -> bytes:
    """`value` as JSON bytes, NUL characters in its strings replaced by U+FFFD."""
    data = orjson.dumps(value)
    if _NUL in data:  # perhaps a real NUL; perhaps text that spells it (escaped as \\u0000)
        data = orjson.dumps(_without_nul(value))
    return data


def decode(data: bytes | str) -> Any:
    return orjson.loads(data)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(item) for item in value]
    return value
