"""API keys: random, shown once, stored only as a hash, compared in constant time.

A key reads ``jh_<key id>_<secret>``. The key id finds the stored record; the SHA-256 of the
whole key is what is stored and compared. Keys carry 256 bits of randomness, so a fast hash is
the right one (a slow password hash protects guessable secrets, which these are not).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jobhouse.errors import InvalidRequest, NotAuthenticated

if TYPE_CHECKING:
    from jobhouse.store.base import Store

_KEY_RE = re.compile(r"^jh_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_WORKSPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: never the secret itself."""

    id: str
    workspace: str
    secret_hash: str
    created_at: datetime
    label: str | None = None
    revoked_at: datetime | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_workspace(name: str) -> str:
    """A workspace name: 1-64 letters, digits, dots, dashes or underscores."""
    if not _WORKSPACE_RE.match(name):
        raise InvalidRequest(
            "Workspace names are 1-64 characters: letters, digits, '.', '_' or '-', starting alphanumeric"
        )
    return name


async def create_key(store: Store, workspace: str, label: str | None = None) -> tuple[str, ApiKey]:
    """Make a new key for `workspace`; returns the key (shown once) and its stored record."""
    check_workspace(workspace)
    key_id = secrets.token_hex(6)
    key = f"jh_{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        id=key_id, workspace=workspace, secret_hash=hash_key(key), created_at=store.clock.now(), label=label
    )
    await store.keys.add(record)
    return key, record


async def authenticate(store: Store, key: str) -> str:
    """The workspace of a valid key; `NotAuthenticated` for anything else."""
    match = _KEY_RE.match(key)
    record = await store.keys.get(match.group(1)) if match else None
    # Compare even when there is no record, so timing says nothing about which keys exist.
    expected = record.secret_hash if record is not None else "0" * 64
    if not hmac.compare_digest(expected, hash_key(key)) or record is None or record.revoked_at is not None:
        raise NotAuthenticated("Invalid or missing API key")
    return record.workspace
