"""The Debian package lists: every program apt can install here, from ``/var/lib/apt/lists``.

apt keeps one ``*_Packages`` file per repository and component, plain or compressed (``.lz4``,
``.gz``, ``.xz``, ``.bz2``). A package is often in several lists (a release, its updates, its
security fixes); they are merged per package, as apt sees them: the version is the one apt would
install (the highest, by Debian's version ordering), and the section, priority and debtags come
from whichever list has them (security lists carry no debtags). Only programs are kept (see
`jobhouse.sources.packages`).
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable
from pathlib import Path

from jobhouse.catalog import Entry, Progress
from jobhouse.sources import packages
from jobhouse.sources.signature import signature

_DESCRIBING = ("Section", "Priority", "Tag", "Description")


def _newer(stanza: dict[str, str], than: dict[str, str]) -> dict[str, str]:
    """Two lists' stanzas of one package as one: the higher version's, with the fields it lacks
    (security lists carry no debtags) taken from the other."""
    from debian.debian_support import Version  # python-debian loads when a scan runs

    if Version(stanza["Version"]) > Version(than["Version"]):
        stanza, than = than, stanza  # `than` is now the newer one
    return {**{k: v for k, v in stanza.items() if k in _DESCRIBING}, **than}


class AptSource:
    """Programs listed in apt's package lists."""

    id: str = "apt"
    title: str = "Debian packages (apt lists)"

    def __init__(self, lists_dir: str = "/var/lib/apt/lists") -> None:
        self.lists_dir = Path(lists_dir)

    def lists(self) -> list[Path]:
        """The package-list files, by name; none where apt has no lists."""
        if not self.lists_dir.is_dir():
            return []
        return sorted(p for p in self.lists_dir.iterdir() if p.is_file() and packages.is_package_list(p))

    def fingerprint(self) -> str | None:
        return signature([self.lists_dir, *self.lists()])

    def scan(self, progress: Progress | None = None) -> list[Entry]:
        return self._read(None, progress)

    def scan_part(self, part: int, parts: int) -> list[Entry]:
        """The entries of the packages whose name hashes to `part` of `parts`: each part reads
        every list (a package's entries in all of them meet in one part), and parses a share."""
        return self._read(lambda name: zlib.crc32(name.encode()) % parts == part)

    def _read(self, wanted: Callable[[str], bool] | None, progress: Progress | None = None) -> list[Entry]:
        files = self.lists()
        total = sum(path.stat().st_size for path in files) or 1
        done = 0
        found: dict[str, dict[str, str]] = {}
        every_name: list[str] = []
        for path in files:
            for stanza in packages.read_stanzas(path, every_name, wanted):
                name = stanza.get("Package")
                if not name or not stanza.get("Version"):
                    raise packages.PackageListError(f"{path}: a package without Package or Version")
                known = found.get(name)
                found[name] = stanza if known is None else _newer(stanza, known)
            done += path.stat().st_size
            if progress is not None:
                progress(done / total)
        names = sorted(set(every_name))
        entries = []
        for name in sorted(found):
            package = packages.Described(name, found[name])
            if package.is_program:
                family = bisect.bisect_left(names, name + ".") - bisect.bisect_left(names, name + "-")  # name-*
                entries.append(package.entry(self.id, family=family))
        return entries
