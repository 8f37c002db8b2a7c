"""Sources: catalogs of the applications a machine can run.

A source knows one way of finding runnable applications: executables on `PATH`, XDG `.desktop`
entries, the Debian packages dpkg installed, Debian's package lists, operator catalog files.
Scanning it is a blocking read that yields `Entry`s (reporting how far it has come, if asked);
the store keeps each source's entries, `jobhouse.merge` folds them into one candidate per
application, and a search ranks those (see `jobhouse.index`). A source that finds nothing
returns an empty list; one that cannot be read raises.

`configured_sources` builds the sources a process uses from its settings: the one place where
they are configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from jobhouse.catalog import Entry, Progress
from jobhouse.errors import ConfigurationError, SourceError
from jobhouse.sources.apt import AptSource
from jobhouse.sources.catalog_file import WELL_KNOWN, CatalogFileError, CatalogSource
from jobhouse.sources.desktop import DesktopSource
from jobhouse.sources.dpkg import DpkgSource
from jobhouse.sources.packages import PackageListError
from jobhouse.sources.path import PathSource

__all__ = [
    "BUILT_IN",
    "WELL_KNOWN",
    "AptSource",
    "CatalogFileError",
    "CatalogSource",
    "DesktopSource",
    "DpkgSource",
    "PackageListError",
    "PathSource",
    "Source",
    "SourceError",
    "configured_sources",
    "default_sources",
]

#: The source names a configuration may list; "catalogs" stands for every catalog file.
BUILT_IN = ("path", "desktop", "dpkg", "apt", "catalogs")


class Source(Protocol):
    """A catalog of runnable applications; `id` is stable and short, `title` is for people."""

    @property
    def id(self) -> str: ...

    @property
    def title(self) -> str: ...

    def scan(self, progress: Progress | None = None) -> list[Entry]:
        """Read the catalog now (blocking), telling `progress` how far it has come; raise if it can't."""
        ...

    def fingerprint(self) -> str | None:
        """A cheap signature of what `scan` reads (file sizes, times, inodes): while it stays the
        same, so do the entries. None if there is no such signature."""
        ...


def configured_sources(
    names: Sequence[str],
    environ: Mapping[str, str],
    *,
    catalogs: Sequence[str] = (WELL_KNOWN,),
    apt_lists: str = "/var/lib/apt/lists",
    dpkg_dir: str = "/var/lib/dpkg",
    hide_paths: bool = False,
) -> list[Source]:
    """The sources named (from `BUILT_IN`), in order, located through `environ` and the settings
    (`hide_paths`: the `path` source launches programs by bare name)."""
    unknown = set(names) - set(BUILT_IN)
    if unknown:
        raise ConfigurationError(f"unknown source(s) {', '.join(sorted(unknown))}; choose from {', '.join(BUILT_IN)}")
    sources: list[Source] = []
    for name in names:
        if name == "path":
            sources.append(PathSource.from_environ(environ, hide_paths=hide_paths))
        elif name == "desktop":
            sources.append(DesktopSource.from_environ(environ))
        elif name == "dpkg":
            sources.append(DpkgSource(dpkg_dir))
        elif name == "apt":
            sources.append(AptSource(apt_lists))
        else:
            for path in catalogs:
                catalog = CatalogSource(path)
                if catalog.id in BUILT_IN:
                    raise ConfigurationError(f"catalog {path}: may not be named like a built-in source ({catalog.id})")
                sources.append(catalog)
    ids = [source.id for source in sources]
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f"two sources share an id: {', '.join(sorted({i for i in ids if ids.count(i) > 1}))}")
    return sources


def default_sources(environ: Mapping[str, str]) -> list[Source]:
    """Every built-in source with its default settings."""
    return configured_sources(BUILT_IN, environ)
