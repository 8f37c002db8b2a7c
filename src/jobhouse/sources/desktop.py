"""The desktop source: applications described by freedesktop.org `.desktop` entries.

Desktop environments on Linux list their applications from `<data dir>/applications/**/*.desktop`,
where the data dirs come from the XDG base-directory spec (`$XDG_DATA_HOME`, then `$XDG_DATA_DIRS`).
A file's *desktop file ID* is its path below `applications/` with `/` turned into `-`; when two data
dirs hold the same ID the earlier dir wins, which is how a user's own entry (even a `Hidden=true` one)
overrides the system's. Only the `[Desktop Entry]` group matters here; entries that are not
applications, or that are hidden from menus, are left out, and an unreadable or malformed file is
skipped rather than failing the scan.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from jobhouse.catalog import OS, AppKind, Entry, Progress
from jobhouse.sources.signature import signature, tree

_GROUP = "Desktop Entry"
#: An application with a menu entry is one people use.
DESKTOP_POPULARITY = 0.5
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = MappingProxyType({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"})
_FIELD_CODE = re.compile(r"%(%|[A-Za-z])")
_LIST_TOKEN = re.compile(r"\\.?|;|[^\\;]+")
# A reverse-DNS application ID: a TLD-like first label and at least two more (org.mozilla.firefox).
_REVERSE_DNS = re.compile(r"[a-z]{2,}(\.[a-z0-9_-]+){2,}")


class DesktopSource:
    """Applications from the `applications/` directories of a list of XDG data dirs."""

    id: str = "desktop"
    title: str = "Desktop applications (.desktop entries)"

    def __init__(self, data_dirs: Sequence[str]) -> None:
        self.data_dirs: tuple[str, ...] = tuple(data_dirs)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DesktopSource:
        """The data dirs of the XDG base-directory spec; relative paths in the variables are ignored."""
        home = environ.get("HOME") or os.path.expanduser("~")
        data_home = environ.get("XDG_DATA_HOME", "")
        if not os.path.isabs(data_home):
            data_home = os.path.join(home, ".local", "share")
        data_dirs = [d for d in environ.get("XDG_DATA_DIRS", "").split(os.pathsep) if os.path.isabs(d)]
        return cls([data_home, *(data_dirs or ["/usr/local/share", "/usr/share"])])

    def fingerprint(self) -> str | None:
        return signature(d for data_dir in self.data_dirs for d in tree(Path(data_dir) / "applications"))

    def scan(self, progress: Progress | None = None) -> list[Entry]:
        seen: set[str] = set()
        found: list[Entry] = []
        for done, data_dir in enumerate(self.data_dirs, 1):
            for file_id, path in _desktop_files(Path(data_dir) / "applications"):
                if file_id in seen:
                    continue
                seen.add(file_id)  # even an entry we skip shadows later ones with its ID
                entry = _read_entry(path)
                candidate = _entry(file_id, path, entry) if entry is not None else None
                if candidate is not None:
                    found.append(candidate)
            if progress is not None:
                progress(done / len(self.data_dirs))
        return sorted(found, key=lambda c: (c.name.lower(), c.id))


def app_name(file_id: str, file_name: str) -> str:
    """The short application name: the file ID lower-cased without `.desktop`, or, when the file's own
    name is reverse-DNS, its last label (`applications/mozilla/org.mozilla.firefox.desktop` -> `firefox`).

    Reverse-DNS means a TLD-like first label and at least two more, so `display-im6.q16.desktop` stays
    `display-im6.q16`.
    """
    own = file_name.removesuffix(".desktop").lower()
    if _REVERSE_DNS.fullmatch(own):
        return own.rpartition(".")[2]
    return file_id.removesuffix(".desktop").lower()


def parse_desktop_entry(text: str) -> dict[str, str] | None:
    """The unlocalized keys of the `[Desktop Entry]` group, raw values; None if there is no such group.

    Comments, blank lines, other groups and localized keys (`Name[de]`) are ignored; for a key given
    twice the first value counts. List values (`Keywords`) keep their `;` separators, see `split_list`.
    """
    entry: dict[str, str] | None = None
    in_group = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            in_group = line[1:-1] == _GROUP and entry is None
            if in_group:
                entry = {}
            continue
        if not in_group or entry is None or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if "[" not in key:
            entry.setdefault(key, value.strip())
    return entry


def unescape(value: str) -> str:
    r"""A string value with the spec's escapes (`\s \n \t \r \\`) resolved; `\;` is left for lists."""
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), value)


def split_list(value: str) -> list[str]:
    r"""A `;`-separated list value, unescaped (`a;b\;c;` -> `["a", "b;c"]`), empties dropped."""
    items: list[str] = []
    current: list[str] = []
    for token in _LIST_TOKEN.findall(value):
        if token == ";":
            items.append("".join(current))
            current = []
        else:
            current.append(";" if token == "\\;" else unescape(token))
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def command_line(exec_value: str) -> str:
    """An `Exec` value as a command: field codes (`%f %U %i ...`) dropped, `%%` -> `%`, spaces collapsed."""
    expanded = _FIELD_CODE.sub(lambda m: "%" if m.group(1) == "%" else "", unescape(exec_value))
    return " ".join(expanded.split())


def _desktop_files(applications: Path) -> Iterator[tuple[str, Path]]:
    """(desktop file ID, path) for every `*.desktop` file under `applications`, in a stable order."""
    for root, dirs, files in os.walk(applications):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".desktop"):
                path = Path(root) / name
                yield "-".join(path.relative_to(applications).parts), path


def _read_entry(path: Path) -> dict[str, str] | None:
    try:
        return parse_desktop_entry(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def _entry(file_id: str, path: Path, entry: Mapping[str, str]) -> Entry | None:
    """The source's entry for a parsed desktop file, or None if it is not a visible application."""
    if entry.get("Type") != "Application" or _flag(entry, "NoDisplay") or _flag(entry, "Hidden"):
        return None
    name = unescape(entry.get("Name", "")).strip()
    if not name:
        return None
    generic_name = unescape(entry.get("GenericName", "")).strip()
    keywords = split_list(entry.get("Keywords", ""))
    if generic_name:
        keywords.append(generic_name)
    return Entry(
        source="desktop",
        id=f"desktop:{file_id}",
        app=app_name(file_id, path.name),
        name=name,
        os=OS.LINUX,
        kind=AppKind.CLI if _flag(entry, "Terminal") else AppKind.GUI,
        version=unescape(entry.get("X-AppImage-Version", "")).strip() or None,
        launch=command_line(entry.get("Exec", "")) or None,
        description=unescape(entry.get("Comment", "")).strip() or generic_name or None,
        keywords=tuple(keywords),
        installed=True,
        popularity=DESKTOP_POPULARITY,
        files=(str(path),),
    )


def _flag(entry: Mapping[str, str], key: str) -> bool:
    return entry.get(key, "").strip().lower() == "true"
