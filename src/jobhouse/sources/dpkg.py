"""The installed Debian packages, from dpkg's own records.

dpkg keeps what is installed in ``/var/lib/dpkg/status`` (deb822 stanzas, read with
python-debian) and, for each package, the files it installed in ``/var/lib/dpkg/info/<package>.list``
(``<package>:<arch>.list`` for multi-arch ones). An entry is a package that is installed and is
a program, or that installed an executable or a desktop entry; its `files` are those executables
(in ``bin``, ``sbin`` and ``games`` directories) and desktop entries, which is how the merge
learns which package a program on ``PATH`` or a desktop entry comes from.

A machine without dpkg has no entries; a status file or a file list that exists but cannot be
read fails the scan, so the previous entries are kept.
"""

from __future__ import annotations

import re
from pathlib import Path

from jobhouse.catalog import Entry, Progress
from jobhouse.sources import packages
from jobhouse.sources.packages import PackageListError
from jobhouse.sources.signature import signature

_FIELDS = ["Package", "Status", "Version", "Section", "Priority", "Description", "Architecture", "Tag"]
_LINKED = re.compile(r"/(?:s?bin|games)/[^/]+$|/applications/.+\.desktop$")


class DpkgSource:
    """Packages dpkg has installed, with the programs and desktop entries each installed."""

    id: str = "dpkg"
    title: str = "Installed Debian packages (dpkg)"

    def __init__(self, admin_dir: str = "/var/lib/dpkg") -> None:
        self.admin_dir = Path(admin_dir)

    def fingerprint(self) -> str | None:
        return signature([self.admin_dir / "status", self.admin_dir / "info"])

    def scan(self, progress: Progress | None = None) -> list[Entry]:
        status = self.admin_dir / "status"
        if not status.exists():
            return []
        installed = _installed(status)
        entries = []
        for done, stanza in enumerate(installed, 1):
            name = stanza["Package"]
            files = self._files(name, stanza.get("Architecture", ""))
            package = packages.Described(name, stanza)
            if files or package.is_program:
                entries.append(package.entry(self.id, installed=True, files=files))
            if progress is not None and (done % 100 == 0 or done == len(installed)):
                progress(done / len(installed))
        return entries

    def _files(self, name: str, arch: str) -> tuple[str, ...]:
        """The executables and desktop entries the package installed, from its file list."""
        info = self.admin_dir / "info"
        for path in (info / f"{name}:{arch}.list", info / f"{name}.list"):
            try:
                text = path.read_text("utf-8")
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError) as exc:
                raise PackageListError(f"{path}: cannot read it: {exc}") from exc
            return tuple(line for line in text.splitlines() if _LINKED.search(line))
        return ()


def _installed(status: Path) -> list[dict[str, str]]:
    """The stanzas of installed packages (``Status: install ok installed``)."""
    from debian import deb822  # python-debian loads when a scan runs, not with every process

    try:
        with status.open("rb") as stream:
            stanzas = [dict(p) for p in deb822.Deb822.iter_paragraphs(stream, fields=_FIELDS, use_apt_pkg=False)]
    except (OSError, UnicodeDecodeError) as exc:
        raise PackageListError(f"{status}: cannot read it: {exc}") from exc
    installed = []
    for stanza in stanzas:
        if "Package" not in stanza or "Version" not in stanza:
            raise PackageListError(f"{status}: a package without Package or Version (is the file cut short?)")
        if stanza.get("Status", "").split()[-1:] == ["installed"]:
            installed.append(stanza)
    return installed
