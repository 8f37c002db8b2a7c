"""The candidate index's data: what a source yields and what the store keeps about sources."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


class OS(enum.StrEnum):
    LINUX = "linux"
    MACOS = "macos"
    WINDOWS = "windows"


class AppKind(enum.StrEnum):
    GUI = "gui"
    CLI = "cli"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One runnable application that a source knows about."""

    id: str
    app: str
    name: str
    os: OS
    kind: AppKind
    source: str
    version: str | None = None
    launch: str | None = None
    install: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()


#: Told how far a scan has come, from 0 to 1 (called from the scanning thread).
Progress = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class CandidateFilter:
    """The exact-match part of a search; the store applies it, ranking happens in `search`."""

    os: OS | None = None
    kind: AppKind | None = None
    source: str | None = None
    version_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store remembers of a source's syncs."""

    id: str
    synced_at: datetime | None = None
    candidate_count: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
