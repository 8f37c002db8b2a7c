"""The `PATH` source: every executable a shell on this machine could run by bare name.

Each is installed and launchable (`launch` is its full path); its `files` are that path and, for
a link, the file it resolves to, so the merge can find the package that installed it.

Directories are searched in `PATH` order and, as in a shell, the first directory holding an executable
of a given name wins; later ones with the same name are shadowed. A non-executable file does not shadow
anything. Directories that are missing or unreadable are skipped, since stale `PATH` entries are common.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping, Sequence

from jobhouse.catalog import OS, AppKind, Entry, Progress
from jobhouse.sources.signature import signature

_ANY_EXECUTE_BIT = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


def platform_os(platform: str = sys.platform) -> OS:
    """The `OS` for a `sys.platform` value; other Unix-likes count as Linux."""
    if platform == "darwin":
        return OS.MACOS
    if platform in ("win32", "cygwin"):
        return OS.WINDOWS
    return OS.LINUX


class PathSource:
    """Executables in a list of directories, typically `$PATH`."""

    id: str = "path"
    title: str = "Executables on PATH"

    def __init__(self, dirs: Sequence[str], *, hide_paths: bool = False) -> None:
        self.dirs: tuple[str, ...] = tuple(dirs)
        #: Launch by bare name (``htop``), not by full path (``/usr/bin/htop``): API clients then
        #: learn nothing of the host's directories.
        self.hide_paths = hide_paths

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, hide_paths: bool = False) -> PathSource:
        """The directories of `environ["PATH"]`, in order; empty entries are ignored."""
        return cls([d for d in environ.get("PATH", "").split(os.pathsep) if d], hide_paths=hide_paths)

    def fingerprint(self) -> str | None:
        found = signature(self.dirs)
        return f"{found}:bare" if found is not None and self.hide_paths else found

    def scan(self, progress: Progress | None = None) -> list[Entry]:
        this_os = platform_os()
        found: dict[str, str] = {}
        for done, directory in enumerate(self.dirs, 1):
            for name, path in _executables(directory):
                found.setdefault(name, path)
            if progress is not None:
                progress(done / len(self.dirs))
        return [
            Entry(
                source="path",
                id=f"path:{name}",
                app=name,
                name=name,
                os=this_os,
                kind=AppKind.CLI,
                launch=name if self.hide_paths else path,
                installed=True,
                files=_and_target(path),
            )
            for name, path in sorted(found.items())
        ]


def _and_target(path: str) -> tuple[str, ...]:
    """The path and, if it is a link, the file it resolves to (where its package put it)."""
    target = os.path.realpath(path)
    return (path,) if target == path else (path, target)


def _executables(directory: str) -> list[tuple[str, str]]:
    """(name, absolute path) of the executable regular files in `directory`; [] if it can't be read."""
    found: list[tuple[str, str]] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    info = entry.stat()  # follows symlinks; a dangling one raises
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode) and info.st_mode & _ANY_EXECUTE_BIT:
                    found.append((entry.name, os.path.abspath(entry.path)))
    except OSError:
        return []
    return found
