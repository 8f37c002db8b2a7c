"""Sources: catalogs of the applications this machine can run.

A source knows one way of finding runnable applications (executables on `PATH`, XDG `.desktop`
entries, ...). Scanning it is a blocking read of the machine that yields `Candidate`s; the store keeps
them and a search ranks them (see `jobhouse.ranking`). A source that finds nothing returns an empty
list; `SourceError` is for a source that cannot be read at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from jobhouse.catalog import Candidate
from jobhouse.sources.desktop import DesktopSource
from jobhouse.sources.path import PathSource

__all__ = ["DesktopSource", "PathSource", "Source", "SourceError", "default_sources"]


class SourceError(Exception):
    """A source could not be read (as opposed to being read and holding nothing)."""


class Source(Protocol):
    """A catalog of runnable applications; `id` is stable and short, `title` is for people."""

    @property
    def id(self) -> str: ...

    @property
    def title(self) -> str: ...

    def scan(self) -> list[Candidate]:
        """Read the catalog now (blocking); raise `SourceError` if it cannot be read."""
        ...


def default_sources(environ: Mapping[str, str]) -> list[Source]:
    """The sources a server scans unless configured otherwise, located through `environ`."""
    return [PathSource.from_environ(environ), DesktopSource.from_environ(environ)]
