"""Versioned schema migrations, one SQL file each, per backend.

Files are named ``NNNN_name.sql`` under the backend's folder; each is applied once, in its own
transaction, and recorded in ``jobhouse_migrations``. Both backends keep the same numbering, so
version N means the same schema on either.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(backend: str) -> list[Migration]:
    """The migrations of `backend` ("sqlite" or "postgres"), in order."""
    found = []
    for entry in resources.files(__name__).joinpath(backend).iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)
