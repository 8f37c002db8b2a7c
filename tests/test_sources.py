"""Sources read real directories: executables on PATH and XDG .desktop entries written to tmp_path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from jobhouse.catalog import OS, AppKind, Entry
from jobhouse.errors import ConfigurationError
from jobhouse.sources import DesktopSource, PathSource, Source, configured_sources, default_sources
from jobhouse.sources.desktop import app_name, command_line, parse_desktop_entry, split_list
from jobhouse.sources.path import platform_os

needs_exec_bits = pytest.mark.skipif(sys.platform == "win32", reason="Windows has no executable bits")


def _write(path: Path, text: str = "", mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mode is not None:
        path.chmod(mode)
    return path


def _by_id(candidates: list[Entry]) -> dict[str, Entry]:
    return {c.id: c for c in candidates}


# --- PATH ---------------------------------------------------------------------------------------------


@needs_exec_bits
def test_path_lists_executables_and_the_first_dir_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _write(first / "tool", "#!/bin/sh\n", 0o755)
    _write(first / "notes.txt", "not a program", 0o644)
    _write(first / "shadowed-by-nothing", "plain", 0o644)  # not executable: must not shadow below
    (first / "subdir").mkdir()
    (first / "subdir").chmod(0o755)
    _write(second / "tool", "#!/bin/sh\n", 0o755)
    _write(second / "shadowed-by-nothing", "#!/bin/sh\n", 0o700)
    _write(second / "another", "#!/bin/sh\n", 0o711)

    found = PathSource([str(first), str(second)]).scan()

    assert [c.name for c in found] == ["another", "shadowed-by-nothing", "tool"]
    launch = {c.name: c.launch for c in found}
    assert launch["tool"] == str(first / "tool")
    assert launch["shadowed-by-nothing"] == str(second / "shadowed-by-nothing")
    tool = found[2]
    assert tool == Entry(
        source="path",
        id="path:tool",
        app="tool",
        name="tool",
        os=platform_os(),
        kind=AppKind.CLI,
        launch=str(first / "tool"),
        installed=True,
        files=(str(first / "tool"),),
    )


@needs_exec_bits
def test_path_follows_symlinks_to_files_but_not_to_dirs_or_nowhere(tmp_path: Path) -> None:
    real = _write(tmp_path / "real" / "program", "#!/bin/sh\n", 0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "linked").symlink_to(real)
    (bin_dir / "dangling").symlink_to(tmp_path / "missing")
    (bin_dir / "dir-link").symlink_to(tmp_path / "real")

    found = PathSource([str(bin_dir)]).scan()

    assert [(c.name, c.launch) for c in found] == [("linked", str(bin_dir / "linked"))]
    assert found[0].files == (str(bin_dir / "linked"), str(real))  # the link, and where its package put it


@needs_exec_bits
def test_path_skips_missing_dirs_and_files_on_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _write(bin_dir / "ok", "#!/bin/sh\n", 0o755)
    not_a_dir = _write(tmp_path / "file", "x")

    found = PathSource([str(tmp_path / "nope"), str(not_a_dir), str(bin_dir)]).scan()

    assert [c.name for c in found] == ["ok"]
    assert PathSource([str(tmp_path / "nope")]).scan() == []


@needs_exec_bits
def test_path_makes_relative_dirs_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "bin" / "rel", "#!/bin/sh\n", 0o755)
    monkeypatch.chdir(tmp_path)

    [found] = PathSource(["bin"]).scan()

    assert found.launch == str(tmp_path / "bin" / "rel")


def test_path_from_environ_splits_path_in_order() -> None:
    source = PathSource.from_environ({"PATH": os.pathsep.join(["/a", "", "/b"])})

    assert source.dirs == ("/a", "/b")
    assert (source.id, source.title) == ("path", "Executables on PATH")
    assert PathSource.from_environ({}).dirs == ()


def test_platform_os_maps_sys_platform() -> None:
    assert platform_os("linux") is OS.LINUX
    assert platform_os("darwin") is OS.MACOS
    assert platform_os("win32") is OS.WINDOWS


# --- .desktop entries ---------------------------------------------------------------------------------

FIREFOX = """\
# Firefox, as a distribution ships it
[Desktop Entry]
Version=1.0
Type=Application
Name=Firefox
Name[de]=Feuerfuchs
GenericName=Web Browser
GenericName[de]=Webbrowser
Comment=Browse the World Wide Web
Comment[de]=Im Internet surfen
Keywords=Internet;WWW;Browser;;
Keywords[de]=Internet;Netz;
Exec=firefox %u
Terminal=false

[Desktop Action new-window]
Name=Open a New Window
Exec=firefox --new-window %u
"""

HTOP = """\
[Desktop Entry]
Type=Application
Name=Htop
Comment=Show system processes
Exec=htop
Terminal=true
"""

FLATPAK_FIREFOX = """\
[Desktop Entry]
Type=Application
Name=Firefox (Flatpak)
Exec=/usr/bin/flatpak run org.mozilla.firefox @@u %U @@
X-AppImage-Version=128.0
"""


def _data_dirs(tmp_path: Path) -> tuple[Path, Path]:
    user, system = tmp_path / "user", tmp_path / "system"
    _write(user / "applications" / "firefox.desktop", FIREFOX)
    _write(
        user / "applications" / "hidden-by-user.desktop",
        "[Desktop Entry]\nType=Application\nName=X\nHidden=true\n",
    )
    _write(user / "applications" / "broken.desktop", "Name=No group header\nType=Application\n")
    _write(system / "applications" / "hidden-by-user.desktop", "[Desktop Entry]\nType=Application\nName=Sys\n")
    _write(system / "applications" / "firefox.desktop", FIREFOX.replace("Name=Firefox", "Name=System Firefox"))
    _write(system / "applications" / "tools" / "htop.desktop", HTOP)
    _write(system / "applications" / "mozilla" / "org.mozilla.firefox.desktop", FLATPAK_FIREFOX)
    _write(system / "applications" / "settings-helper.desktop", HTOP.replace("Terminal=true", "NoDisplay=true"))
    _write(system / "applications" / "homepage.desktop", "[Desktop Entry]\nType=Link\nName=Home\nURL=https://x\n")
    _write(system / "applications" / "noname.desktop", "[Desktop Entry]\nType=Application\nName[de]=Nur\n")
    (system / "applications" / "latin1.desktop").write_bytes(b"[Desktop Entry]\nType=Application\nName=Caf\xe9\n")
    _write(system / "applications" / "readme.txt", "[Desktop Entry]\nType=Application\nName=Not an entry\n")
    return user, system


def test_desktop_scan_lists_visible_applications(tmp_path: Path) -> None:
    user, system = _data_dirs(tmp_path)

    found = DesktopSource([str(user), str(system)]).scan()

    assert [c.name for c in found] == ["Firefox", "Firefox (Flatpak)", "Htop"]
    firefox, flatpak, htop = found
    assert firefox == Entry(
        source="desktop",
        id="desktop:firefox.desktop",
        app="firefox",
        name="Firefox",
        os=OS.LINUX,
        kind=AppKind.GUI,
        version=None,
        launch="firefox",
        description="Browse the World Wide Web",
        keywords=("Internet", "WWW", "Browser", "Web Browser"),
        installed=True,
        popularity=0.5,
        files=(str(user / "applications" / "firefox.desktop"),),
    )
    assert flatpak.id == "desktop:mozilla-org.mozilla.firefox.desktop"
    assert flatpak.app == "firefox"
    assert flatpak.launch == "/usr/bin/flatpak run org.mozilla.firefox @@u @@"
    assert flatpak.version == "128.0"
    assert flatpak.description is None
    assert htop.id == "desktop:tools-htop.desktop"
    assert (htop.app, htop.kind, htop.launch) == ("tools-htop", AppKind.CLI, "htop")
    assert htop.description == "Show system processes"


def test_desktop_first_data_dir_wins_even_for_hidden_entries(tmp_path: Path) -> None:
    user, system = _data_dirs(tmp_path)

    names = {c.name for c in DesktopSource([str(user), str(system)]).scan()}
    reversed_names = {c.name for c in DesktopSource([str(system), str(user)]).scan()}

    assert "System Firefox" not in names
    assert "Sys" not in names  # the user's Hidden=true copy deletes it
    assert {"System Firefox", "Sys"} <= reversed_names
    assert "Firefox" not in reversed_names


def test_desktop_without_any_dirs_finds_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    assert DesktopSource([str(tmp_path / "missing"), str(tmp_path / "empty")]).scan() == []
    assert DesktopSource([]).scan() == []


def test_desktop_from_environ_follows_xdg_base_dirs() -> None:
    explicit = DesktopSource.from_environ(
        {
            "HOME": "/home/u",
            "XDG_DATA_HOME": "/data/home",
            "XDG_DATA_DIRS": f"/d1{os.pathsep}relative{os.pathsep}/d2",
        }
    )
    defaults = DesktopSource.from_environ({"HOME": "/home/u", "XDG_DATA_HOME": "", "XDG_DATA_DIRS": ""})

    assert explicit.data_dirs == ("/data/home", "/d1", "/d2")
    assert defaults.data_dirs == (
        os.path.join("/home/u", ".local", "share"),
        "/usr/local/share",
        "/usr/share",
    )
    assert (explicit.id, explicit.title) == ("desktop", "Desktop applications (.desktop entries)")


def test_parse_desktop_entry_reads_only_the_main_group() -> None:
    entry = parse_desktop_entry(FIREFOX)

    assert entry is not None
    assert entry["Name"] == "Firefox"
    assert entry["Exec"] == "firefox %u"  # not the action's Exec
    assert "Name[de]" not in entry
    assert parse_desktop_entry("[Other]\nName=x\n") is None
    assert parse_desktop_entry("[Desktop Entry]\nName = Spaced  \n") == {"Name": "Spaced"}


def test_exec_field_codes_and_lists() -> None:
    assert command_line("firefox %u") == "firefox"
    assert command_line("app %F --icon %i  --caption %c %k") == "app --icon --caption"
    assert command_line("printf 100%% %%f") == "printf 100% %f"
    assert split_list(r"Internet;WWW;;a\;b;") == ["Internet", "WWW", "a;b"]


def test_app_names_shorten_reverse_dns_only() -> None:
    assert app_name("org.gnome.Nautilus.desktop", "org.gnome.Nautilus.desktop") == "nautilus"
    assert app_name("kde-org.kde.kate.desktop", "org.kde.kate.desktop") == "kate"
    assert app_name("display-im6.q16.desktop", "display-im6.q16.desktop") == "display-im6.q16"
    assert app_name("Gimp.desktop", "Gimp.desktop") == "gimp"


# --- defaults -----------------------------------------------------------------------------------------


@needs_exec_bits
def test_configured_sources_come_in_the_order_named(tmp_path: Path) -> None:
    _write(tmp_path / "bin" / "htop", "#!/bin/sh\n", 0o755)
    _write(tmp_path / "share" / "applications" / "htop.desktop", HTOP)
    environ = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "share")}
    environ["XDG_DATA_DIRS"] = str(tmp_path / "no-system-dirs")

    sources: list[Source] = configured_sources(["desktop", "path"], environ)

    assert [s.id for s in sources] == ["desktop", "path"]
    assert [[c.id for c in s.scan()] for s in sources] == [["desktop:htop.desktop"], ["path:htop"]]
    assert [s.id for s in default_sources(environ)] == ["path", "desktop", "dpkg", "apt", "well-known"]
    with pytest.raises(ConfigurationError, match="unknown source"):
        configured_sources(["path", "ftp"], environ)
    with pytest.raises(ConfigurationError, match="named like a built-in source"):
        configured_sources(["catalogs"], environ, catalogs=[str(tmp_path / "apt.yaml")])
