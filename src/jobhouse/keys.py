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
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jobhouse.errors import InvalidRequest, NotAuthenticated

if TYPE_CHECKING:
    from jobhouse.hub import Hub
    from jobhouse.store.base import KeyStore, Store

_KEY_RE = re.compile(r"^jh_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_KEY_ID_RE = re.compile(r"^[a-z0-9]{12}$")
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


def key_id_of(given: str) -> str | None:
    """The key id named by `given`: a key id as ``keys list`` shows it, or a whole key (whose id is
    its second part); None for anything else. Never echoes the secret: the caller gets the id only."""
    given = given.strip()
    match = _KEY_RE.match(given)
    if match:
        return match.group(1)
    return given if _KEY_ID_RE.match(given) else None


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
    return await check_key(store.keys, key)


async def check_key(keys: KeyStore, key: str) -> str:
    """The workspace of a valid key of `keys`; `NotAuthenticated` for anything else."""
    match = _KEY_RE.match(key)
    record = await keys.get(match.group(1)) if match else None
    # Compare even when there is no record, so timing says nothing about which keys exist.
    expected = record.secret_hash if record is not None else "0" * 64
    if not hmac.compare_digest(expected, hash_key(key)) or record is None or record.revoked_at is not None:
        raise NotAuthenticated("Invalid or missing API key")
    return record.workspace


class CachedKeys:
    """A store's keys with the active ones remembered for `ttl` seconds, so most requests
    authenticate without a trip to the store.

    Used by the PostgreSQL store, where a read is a network round trip. A revocation anywhere
    reaches every process's hub (a NOTIFY, within milliseconds), which makes the cache forget;
    `ttl` bounds the time a lost notification could leave a revoked key working. Unknown and
    revoked keys are never cached.
    """

    def __init__(self, keys: KeyStore, hub: Hub, ttl: float = 5.0) -> None:
        self._keys = keys
        self._ttl = ttl
        self._cached: dict[str, tuple[ApiKey, float]] = {}
        hub.on_revoke(self.forget)

    async def add(self, key: ApiKey) -> None:
        await self._keys.add(key)

    async def get(self, key_id: str) -> ApiKey | None:
        cached = self._cached.get(key_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        record = await self._keys.get(key_id)
        if record is not None and record.revoked_at is None:
            self._cached[key_id] = (record, time.monotonic() + self._ttl)
        else:
            self._cached.pop(key_id, None)
        return record

    async def all(self) -> list[ApiKey]:
        return await self._keys.all()

    async def revoke(self, key_id: str) -> bool:
        self._cached.pop(key_id, None)
        return await self._keys.revoke(key_id)

    async def first_run(self) -> bool:
        return await self._keys.first_run()

    def forget(self, key_ids: Collection[str] | None) -> None:
        if key_ids is None:
            self._cached.clear()
        else:
            for key_id in key_ids:
                self._cached.pop(key_id, None)
