"""What Debian's package records say about programs: shared by the `apt` and `dpkg` sources.

Both read files of deb822 stanzas (``Field: value`` lines, continuation lines indented, a blank
line between packages) through python-debian. The big ``Packages`` lists (tens of megabytes)
are first cut down to the fields a candidate needs, then parsed with python-debian's
`PackageFile`: the same parser, a tenth of the text.

A package is a *program* unless it is a library, development files, documentation, debug
symbols, data, a translation or a module of a programming language (``python3-*``, ``node-*``,
``ruby-*``, ``r-cran-*``, Perl and Java libraries...). It is a graphical one when its section is a desktop one (x11,
gnome, kde, xfce) or its debtags say so (``interface::x11``, ``x11::application``, a
``uitoolkit::`` other than ncurses); otherwise a command-line one.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import lz4.frame

from jobhouse.catalog import OS, AppKind, Entry

_OPENERS = {".lz4": lz4.frame.open, ".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
_SKIPPED_SECTIONS = {"libs", "libdevel", "oldlibs", "doc", "debug", "localization", "fonts", "kernel"}
_SKIPPED_ROLES = {"shared-lib", "devel-lib", "documentation", "debug-symbols", "app-data", "data", "dummy"}
_SKIPPED_SUFFIXES = ("-dev", "-doc", "-dbg", "-dbgsym", "-data", "-common")
#: Modules of a programming language, imported rather than run (a command one of them installs is
#: found on PATH once it is installed).
_LANGUAGE_MODULE = re.compile(r"(python3-|node-|ruby-|r-cran-|r-bioc-|r-other-|libghc-)|lib.+-(perl|java|ocaml)$")
_DESKTOP_SECTIONS = {"x11", "gnome", "kde", "xfce", "gnustep"}
#: Debtags of graphical programs: these values of these facets (and any `uitoolkit` but ncurses).
_GUI_FACETS = {"interface": {"x11", "graphical"}, "x11": {"application"}}
_KEYWORD_FACETS = {"web", "use", "field", "game", "works-with", "scope"}
#: How much a package's `Priority` says about how widely it is used.
_PRIORITY = {"required": 1.0, "important": 0.8, "standard": 0.6, "optional": 0.2, "extra": 0.0}
#: The fields a candidate needs, each line with its continuation lines (only `Tag` has useful ones).
_WANTED = re.compile(
    rb"^(?:Package|Version|Section|Priority|Description|Status):[^\n]*\n|^Tag:[^\n]*\n(?:[ \t][^\n]*\n)*|^\n",
    re.MULTILINE,
)
_BLANKS = re.compile(rb"\n\n+")
_NAME = re.compile(rb"^Package:[ \t]*(\S+)", re.MULTILINE)

Stanza = Mapping[str, str]


class PackageListError(ValueError):
    """A package list or status file that cannot be read."""


def open_list(path: Path) -> BinaryIO:
    """A package list, decompressed as its suffix says (``.lz4``, ``.gz``, ``.xz``, ``.bz2``)."""
    opener = _OPENERS.get(path.suffix)
    if opener is not None:
        stream: BinaryIO = opener(path, "rb")
        return stream
    return path.open("rb")


def is_package_list(path: Path) -> bool:
    plain = path.name.removesuffix(path.suffix) if path.suffix in _OPENERS else path.name
    return plain.endswith("_Packages")


def read_stanzas(
    path: Path, names: list[str] | None = None, wanted: Callable[[str], bool] | None = None
) -> Iterator[dict[str, str]]:
    """The stanzas of a ``Packages`` file that may be programs, with only the fields candidates use.

    Packages that cannot be programs by their name alone (``-dev``, ``-doc``, translations...),
    or that `wanted` does not want, are skipped before parsing; `names`, if given, receives every
    package name. Raises
    `PackageListError` naming the file for anything unreadable: a broken compression, bytes that
    are not text, a line that is not a field.
    """
    from debian.debian_support import PackageFile, ParseError  # python-debian loads when a scan runs

    try:
        with open_list(path) as raw:
            data = raw.read().replace(b"\r\n", b"\n")
        kept = []
        for stanza in _BLANKS.split(data):
            found = _NAME.search(stanza)
            if found is None:
                if stanza.strip():
                    raise PackageListError(f"{path}: a stanza without a Package field: {stanza[:80]!r}")
                continue
            name = found.group(1).decode()
            if names is not None:
                names.append(name)
            if _may_be_program(name) and (wanted is None or wanted(name)):
                kept.append(stanza)
        if not kept:  # an empty list, or none of it wanted
            return
        slim = b"".join(_slim(b"\n\n".join(kept) + b"\n"))
        for fields in PackageFile(str(path), io.BytesIO(slim)):
            yield dict(fields)
    except PackageListError:
        raise
    except ParseError as exc:
        raise PackageListError(f"{path}: not a package list ({exc})") from exc
    except (OSError, EOFError, RuntimeError, UnicodeDecodeError, lzma.LZMAError, ValueError) as exc:
        raise PackageListError(f"{path}: cannot read it: {exc}") from exc


def _slim(data: bytes) -> Iterator[bytes]:
    """The wanted lines of stanzas (a blank line after each), a `Tag` field on one line."""
    for line in _WANTED.findall(data):
        yield line.replace(b"\n ", b" ").replace(b"\n\t", b" ") if line.startswith(b"Tag:") else line


def _may_be_program(name: str) -> bool:
    return not (name.endswith(_SKIPPED_SUFFIXES) or "-l10n-" in name or _LANGUAGE_MODULE.match(name))


class Described:
    """What a package's stanza says about it as a program (its debtags read once)."""

    def __init__(self, name: str, stanza: Stanza) -> None:
        self.name = name
        self.stanza = stanza
        self.section = stanza.get("Section", "").rsplit("/", 1)[-1]
        roles: set[str] = set()
        words = {self.section} if self.section else set()
        gui = self.section in _DESKTOP_SECTIONS
        for tag in stanza.get("Tag", "").replace("\n", " ").split(","):
            facet, _, value = tag.strip().partition("::")
            if facet == "role":
                roles.add(value)
            elif facet in _KEYWORD_FACETS and value:
                words.add(value)
            elif facet == "uitoolkit":
                gui = gui or value != "ncurses"
            elif value in _GUI_FACETS.get(facet, ()):
                gui = True
        #: Something a person runs (not a library, docs, data, translations...).
        self.is_program = _may_be_program(name) and self.section not in _SKIPPED_SECTIONS and not roles & _SKIPPED_ROLES
        self.kind = AppKind.GUI if gui else AppKind.CLI
        #: The section and the debtags of a few facets (``web::browser`` gives ``browser``).
        self.keywords = tuple(sorted(words))
        #: The one-line description (the first line of `Description`).
        self.summary = stanza.get("Description", "").split("\n", 1)[0].strip() or None

    def popularity(self, family: int) -> float:
        """0-1 from the package's `Priority` and its family: how many packages are named after it
        (``chromium-driver``, ``chromium-l10n``... make `chromium` a well-known program)."""
        priority = _PRIORITY.get(self.stanza.get("Priority", ""), 0.2)
        return round(0.5 * priority + 0.5 * min(1.0, math.log2(1 + family) / 6), 4)

    def entry(self, source: str, *, family: int = 0, installed: bool = False, files: tuple[str, ...] = ()) -> Entry:
        return Entry(
            source=source,
            id=f"{source}:{self.name}",
            app=self.name,
            name=self.name,
            os=OS.LINUX,
            kind=self.kind,
            version=self.stanza["Version"],
            install=f"apt-get install {self.name}",
            description=self.summary,
            keywords=self.keywords,
            installed=installed,
            popularity=self.popularity(family),
            files=files,
            program=self.is_program,
        )
