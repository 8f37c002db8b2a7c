"""The candidate index's data: what a source knows (`Entry`), and what a search returns (`Candidate`).

Each source yields `Entry`s: one per thing it knows (an executable, a `.desktop` file, a Debian
package, a catalog line). `jobhouse.merge` folds the entries that describe one program into one
`Candidate`, so a program that is on `PATH`, has a desktop entry and comes from a Debian package
is one result that knows its launch command, its version and how to install it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class OS(enum.StrEnum):
    LINUX = "linux"
    MACOS = "macos"
    WINDOWS = "windows"


class AppKind(enum.StrEnum):
    GUI = "gui"
    CLI = "cli"


class Entry(NamedTuple):
    """What one source knows of one application (or, for package sources, of one package).

    `id` is unique within the source and stable across syncs. `files` are paths on this machine
    that the entry stands for: an executable and what it resolves to, a `.desktop` file, or the
    executables and desktop files a package installed; the merge links entries through them.
    `popularity` (0-1) is the source's own signal of how well known the application is. A
    package that is no program itself (a library or data package that installed one, such as
    ``vim-common``) has `program` false: it only tells its programs where they come from.
    A named tuple, not a dataclass: a sync makes tens of thousands of them.
    """

    source: str
    id: str
    app: str
    name: str
    os: OS
    kind: AppKind
    version: str | None = None
    launch: str | None = None
    install: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()
    installed: bool = False
    popularity: float = 0.0
    files: tuple[str, ...] = ()
    program: bool = True


class Candidate(NamedTuple):
    """One application on one OS, as a search returns it: what every source knows of it, merged.

    `id` is ``<os>:<app>``, stable across syncs. `aliases` are other names it is known by (the
    Debian package it comes from, when that is named otherwise); searches match them like `name`.
    """

    id: str
    app: str
    name: str
    os: OS
    kind: AppKind
    sources: tuple[str, ...]
    version: str | None = None
    launch: str | None = None
    install: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    package: str | None = None
    installed: bool = False
    popularity: float = 0.0

    @property
    def source(self) -> str:
        """The source that knows it best (the first of `sources`)."""
        return self.sources[0]

    @property
    def launchable(self) -> bool:
        """Installed here, with a command that starts it."""
        return self.installed and self.launch is not None

    @property
    def availability(self) -> int:
        """2: installed and launchable; 1: installed; 0: installable or listed only."""
        return 2 if self.launchable else 1 if self.installed else 0


#: Told how far a scan has come, from 0 to 1 (called from the scanning thread).
Progress = Callable[[float], None]

_VERSION_TOKEN = re.compile(r"\d+|[^\W\d_]+")
_EPOCH = re.compile(r"^\d+:")


def version_parts(version: str) -> tuple[int | str, ...]:
    """A version's components, numbers as numbers, epoch dropped: ``1:2.39.5-0+deb12u3`` is
    ``(2, 39, 5, 0, 'deb', 12, 'u', 3)``; separators do not count."""
    return tuple(
        int(token) if token.isdigit() else token.casefold()
        for token in _VERSION_TOKEN.findall(_EPOCH.sub("", version.strip()))
    )


def version_matches(version: str | None, wanted: str) -> bool:
    """Whether `version` starts with the components of `wanted`: ``"4"`` matches ``4.2-1`` and
    ``4``, not ``43.1-2``; ``"1.2"`` matches ``1.2.3``, not ``1.20``."""
    if version is None:
        return False
    want = version_parts(wanted)
    return bool(want) and version_parts(version)[: len(want)] == want


@dataclass(frozen=True, slots=True)
class CandidateFilter:
    """The exact-match part of a search: which candidates may be ranked at all."""

    os: OS | None = None
    kind: AppKind | None = None
    source: str | None = None
    version: str | None = None

    def admits(self, candidate: Candidate) -> bool:
        return (
            (self.os is None or candidate.os == self.os)
            and (self.kind is None or candidate.kind == self.kind)
            and (self.source is None or self.source in candidate.sources)
            and (self.version is None or version_matches(candidate.version, self.version))
        )


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store remembers of a source's syncs; `generation` moves at every sync."""

    id: str
    synced_at: datetime | None = None
    candidate_count: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    generation: int = 0
    fingerprint: str | None = None
