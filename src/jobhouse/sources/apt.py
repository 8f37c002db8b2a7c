"""The Debian package lists: every program apt can install here, from ``/var/lib/apt/lists``.

apt keeps one ``*_Packages`` file per repository and component, plain or compressed (``.lz4``,
``.gz``, ``.xz``, as apt is configured). Each package is a stanza of ``Field: value`` lines.
Libraries, development files, documentation, debug symbols, data and translations are left out:
a candidate is something a person runs. A package is a graphical application when its section is
a desktop one (x11, gnome, kde, xfce) or its debtags say so (``interface::x11``,
``x11::application``, a ``uitoolkit::`` other than ncurses); otherwise it is a command-line one.
A package in several lists (a release and its updates) keeps its entry from the last list read,
and lists are read release first, then updates and security.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import lz4.frame

from jobhouse.catalog import OS, AppKind, Candidate, Progress

_OPENERS = {".lz4": lz4.frame.open, ".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
_SKIPPED_SECTIONS = {"libs", "libdevel", "oldlibs", "doc", "debug", "localization", "fonts", "kernel"}
_SKIPPED_ROLES = {"shared-lib", "devel-lib", "documentation", "debug-symbols", "app-data", "data", "dummy"}
_SKIPPED_SUFFIXES = ("-dev", "-doc", "-dbg", "-dbgsym", "-data", "-common")
_DESKTOP_SECTIONS = {"x11", "gnome", "kde", "xfce", "gnustep"}
_GUI_TAGS = {"interface::x11", "interface::graphical", "x11::application"}
_KEYWORD_FACETS = {"web", "use", "field", "game", "works-with", "scope"}
_LATER = re.compile(r"-(updates|security|backports)_")


class AptSource:
    """Programs listed in apt's package lists."""

    id: str = "apt"
    title: str = "Debian packages (apt lists)"

    def __init__(self, lists_dir: str = "/var/lib/apt/lists") -> None:
        self.lists_dir = Path(lists_dir)

    def lists(self) -> list[Path]:
        """The package-list files, release first; none where apt has no lists."""
        if not self.lists_dir.is_dir():
            return []
        found = [path for path in self.lists_dir.iterdir() if path.is_file() and _is_package_list(path)]
        return sorted(found, key=lambda path: (bool(_LATER.search(path.name)), path.name))

    def scan(self, progress: Progress | None = None) -> list[Candidate]:
        files = self.lists()
        total = sum(path.stat().st_size for path in files) or 1
        done = 0
        packages: dict[str, Candidate] = {}
        for path in files:
            with _open(path) as raw:
                for stanza in _stanzas(raw):
                    candidate = _candidate(stanza)
                    if candidate is not None:
                        packages[candidate.app] = candidate
            done += path.stat().st_size
            if progress is not None:
                progress(done / total)
        return sorted(packages.values(), key=lambda c: c.app)


def _is_package_list(path: Path) -> bool:
    plain = path.name.removesuffix(path.suffix) if path.suffix in _OPENERS else path.name
    return plain.endswith("_Packages")


def _open(path: Path) -> BinaryIO:
    opener = _OPENERS.get(path.suffix)
    if opener is not None:
        stream: BinaryIO = opener(path, "rb")
        return stream
    return path.open("rb")


def _stanzas(raw: BinaryIO) -> Iterator[dict[str, str]]:
    """``Field: value`` stanzas, continuation lines joined; only the fields a candidate needs."""
    stanza: dict[str, str] = {}
    field = ""
    for line_bytes in raw:
        line = line_bytes.decode("utf-8", "replace").rstrip("\n")
        if not line:
            if stanza:
                yield stanza
            stanza, field = {}, ""
        elif line[0] in " \t":
            if field == "Tag":
                stanza[field] += " " + line.strip()
        else:
            field, _, value = line.partition(":")
            if field in ("Package", "Version", "Description", "Section", "Tag"):
                stanza[field] = value.strip()
            else:
                field = ""
    if stanza:
        yield stanza


def _candidate(stanza: dict[str, str]) -> Candidate | None:
    name = stanza.get("Package")
    if not name or name.endswith(_SKIPPED_SUFFIXES) or "-l10n-" in name:
        return None
    section = stanza.get("Section", "").rsplit("/", 1)[-1]
    tags = {tag.strip() for tag in stanza.get("Tag", "").split(",") if tag.strip()}
    roles = {tag.split("::", 1)[1] for tag in tags if tag.startswith("role::")}
    if section in _SKIPPED_SECTIONS or roles & _SKIPPED_ROLES:
        return None
    toolkits = {tag for tag in tags if tag.startswith("uitoolkit::")} - {"uitoolkit::ncurses"}
    gui = section in _DESKTOP_SECTIONS or bool(tags & _GUI_TAGS) or bool(toolkits)
    keywords = {section} | {tag.split("::", 1)[1] for tag in tags if tag.split("::", 1)[0] in _KEYWORD_FACETS}
    return Candidate(
        id=f"apt:{name}",
        app=name,
        name=name,
        os=OS.LINUX,
        kind=AppKind.GUI if gui else AppKind.CLI,
        source="apt",
        version=stanza.get("Version") or None,
        launch=None,
        install=f"apt-get install {name}",
        description=stanza.get("Description") or None,
        keywords=tuple(sorted(k for k in keywords if k)),
    )
