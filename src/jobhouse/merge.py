"""The merge: one candidate per application per OS, from what every source knows of it.

Sources see parts of a program: `path` its executable, `desktop` its menu entry, `dpkg` the
package that installed it, `apt` the package apt would install, a catalog what an operator wrote.
`merge` folds the entries that describe one program into one `Candidate`:

1. An executable on ``PATH`` is an application, named as a shell runs it. dpkg's file lists say
   which package installed it (through links and ``/bin`` = ``/usr/bin`` too): its *owner*.
2. A desktop entry joins the application of its own name (``vim.desktop`` joins ``vim``), else
   the one its ``Exec`` starts if that one has no desktop entry yet, else it is one of its own.
3. A Debian package (installed, or in the apt lists) joins the application of the same name;
   else, if it is a program and installed exactly one application, that one (``ripgrep``
   joins ``rg``, as an alias); else a program is an application of its own, and a package that
   is no program (``vim-common``, ``libc-bin``) only tells its applications where they come
   from. Its installed (dpkg) and installable (apt) sides merge.
4. A catalog entry joins the application of the same name on its OS, else is one of its own.
5. An application whose owner did not join it (``ls`` of ``coreutils``) still takes the owner's
   version, description and install command.

The fields of a merged candidate come from the source that knows them best: the name from the
desktop entry or a catalog, the launch command from ``PATH`` (else the desktop entry's ``Exec``),
the version from dpkg (what is installed), else from apt (what would be installed), the
description from the packages; the kind from the desktop entry, a catalog or the package's
tags, else `cli`. It is installed when any source says so. Its id, ``<os>:<app>``, stays the
same across syncs.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from jobhouse.catalog import OS, AppKind, Candidate, Entry

#: The sources whose entries play a part of their own; any other source is a catalog.
PATH, DESKTOP, DPKG, APT = "path", "desktop", "dpkg", "apt"
ROLES = (PATH, DESKTOP, DPKG, APT)
_MERGED_USR = ("/bin/", "/sbin/", "/lib/", "/lib64/")


@dataclass
class _Draft:
    """An application being put together."""

    os: OS
    app: str
    entries: list[Entry] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)  # Debian packages merged into it, the first is its own
    owner: str | None = None  # the package that installed its executable or desktop entry


def merge(entries: Iterable[Entry], order: Sequence[str] = ()) -> list[Candidate]:
    """The candidates these entries make, sorted by id. `order` ranks sources (for `sources`)."""
    by_role: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_role[_role(entry)].append(entry)
    drafts: dict[tuple[OS, str], _Draft] = {}

    def draft(os: OS, app: str) -> _Draft:
        return drafts.setdefault((os, app.casefold()), _Draft(os, app))

    installed = {e.app: e for e in by_role[DPKG]}
    owners: dict[str, str] = {}
    for package in installed.values():
        for path in package.files:
            owners.setdefault(canonical(path), package.app)

    def owner_of(files: Iterable[str]) -> str | None:
        return next((owners[p] for p in map(canonical, files) if p in owners), None)

    owned: defaultdict[str, list[_Draft]] = defaultdict(list)
    for entry in by_role[PATH]:
        program = draft(entry.os, entry.app)
        program.entries.append(entry)
        program.owner = program.owner or owner_of(entry.files)
    for entry in by_role[DESKTOP]:
        joined = drafts.get((entry.os, entry.app.casefold())) or _started_by(entry, drafts)
        joined = joined or draft(entry.os, entry.app)
        joined.entries.append(entry)
        joined.owner = joined.owner or owner_of(entry.files)
    for program in drafts.values():
        if program.owner is not None:
            owned[program.owner].append(program)

    available = {e.app: e for e in by_role[APT]}
    names = sorted(installed.keys() | available.keys())
    unplaced = []
    for name in names:  # first, every package that names an application
        named = drafts.get((OS.LINUX, name.casefold()))
        if named is None:
            unplaced.append(name)
        else:
            _add_package(named, name, installed, available)
    for name in unplaced:  # then each other program joins the only application it installed, or stands alone
        package = installed.get(name) or available[name]
        mine = owned.get(name, [])
        if package.program and len(mine) == 1:
            _add_package(mine[0], name, installed, available)
        elif package.program:
            _add_package(draft(OS.LINUX, name), name, installed, available)
    for entry in by_role[""]:
        draft(entry.os, entry.app).entries.append(entry)

    rank = {source: place for place, source in enumerate(order)}
    return sorted((_candidate(d, installed, available, rank) for d in drafts.values()), key=lambda c: c.id)


def _add_package(program: _Draft, name: str, installed: dict[str, Entry], available: dict[str, Entry]) -> None:
    program.packages.append(name)
    program.entries.extend(e for e in (installed.get(name), available.get(name)) if e is not None)


def _started_by(entry: Entry, drafts: dict[tuple[OS, str], _Draft]) -> _Draft | None:
    """The application a desktop entry's command starts, if it has no desktop entry yet."""
    binary = _binary(entry.launch)
    program = drafts.get((entry.os, binary.casefold())) if binary else None
    if program is None or any(e.source == DESKTOP for e in program.entries):
        return None
    return program


def _binary(command: str | None) -> str | None:
    """The program a command line starts: its first word, past ``env`` and ``NAME=value``."""
    if not command:
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for word in words:
        if word != "env" and "=" not in word:
            return PurePosixPath(word).name or None
    return None


def canonical(path: str) -> str:
    """A path as dpkg's records and ``PATH`` both reach it: ``/bin/ls`` and ``/usr/bin/ls`` are one
    file on a merged-/usr system (Debian's default)."""
    return "/usr" + path if path.startswith(_MERGED_USR) else path


def _candidate(
    program: _Draft, installed: dict[str, Entry], available: dict[str, Entry], rank: dict[str, int]
) -> Candidate:
    owner = program.owner if program.owner not in program.packages else None
    if owner is None and len(program.entries) == 1:
        return _alone(program.entries[0], program.packages)
    own = _ByRole(program.entries)
    # What the package that installed it says counts after what the application says itself.
    known = _ByRole([*program.entries, *(e for e in (installed.get(owner or ""), available.get(owner or "")) if e)])
    is_installed = any(e.installed for e in known.all)
    named = own.first(DESKTOP, "")
    kind = own.first(DESKTOP, "", APT, DPKG, PATH)
    launch = own.value("launch", PATH, DESKTOP, "")
    version = known.value("version", DPKG, DESKTOP)
    if version is None and not is_installed:  # what apt or a catalog offers; not claimed for one installed otherwise
        version = known.value("version", APT, "")
    aliases = dict.fromkeys(n for n in [*program.packages, *(e.app for e in program.entries)] if n != program.app)
    sources = sorted(dict.fromkeys(e.source for e in known.all), key=lambda s: (rank.get(s, len(rank)), s))
    return Candidate(
        id=f"{program.os.value}:{program.app}",
        app=program.app,
        name=named.name if named else program.app,
        os=program.os,
        kind=kind.kind if kind else AppKind.CLI,
        sources=tuple(sources),
        version=version,
        launch=launch,
        install=known.value("install", DPKG, APT, ""),
        description=known.value("description", DPKG, APT, DESKTOP, ""),
        keywords=tuple(dict.fromkeys(k for e in known.all for k in e.keywords)),
        aliases=tuple(aliases),
        package=program.packages[0] if program.packages else owner,
        installed=is_installed,
        popularity=max(e.popularity for e in known.all),
    )


def _alone(entry: Entry, packages: list[str]) -> Candidate:
    """The candidate of an application only one entry knows (most apt packages)."""
    return Candidate(
        id=f"{entry.os.value}:{entry.app}",
        app=entry.app,
        name=entry.name,
        os=entry.os,
        kind=entry.kind,
        sources=(entry.source,),
        version=entry.version,
        launch=entry.launch,
        install=entry.install,
        description=entry.description,
        keywords=entry.keywords,
        package=packages[0] if packages else None,
        installed=entry.installed,
        popularity=entry.popularity,
    )


class _ByRole:
    """Entries grouped by role ("" for catalogs), each group in its original order."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.all = entries
        self.groups: defaultdict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            self.groups[_role(entry)].append(entry)

    def first(self, *roles: str) -> Entry | None:
        """The first entry of the first of these roles that has one."""
        return next((group[0] for group in map(self.groups.get, roles) if group), None)

    def value(self, field: str, *roles: str) -> str | None:
        """The first value of `field` set in an entry of these roles, in this order of roles."""
        for role in roles:
            for entry in self.groups.get(role, ()):
                found: str | None = getattr(entry, field)
                if found:
                    return found
        return None


def _role(entry: Entry) -> str:
    return entry.source if entry.source in ROLES else ""
