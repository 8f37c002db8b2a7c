"""The Debian sources read what apt and dpkg wrote: package lists merged per package, installed packages
with the programs they installed, versions in Debian's order."""

from __future__ import annotations

import gzip
import lzma
import shutil
import subprocess
from pathlib import Path

import lz4.frame
import pytest
from debian.debian_support import Version

from jobhouse.catalog import AppKind
from jobhouse.sources import AptSource, DpkgSource, PackageListError
from tests.servers import PACKAGES, Machine

FIREFOX_UPDATE = """Package: firefox-esr
Version: 115.10.0esr-1~deb12u1
Section: web
Priority: optional
Description: Mozilla Firefox web browser - Extended Support Release (ESR)
"""


def lists(tmp_path: Path) -> Path:
    path = tmp_path / "lists"
    path.mkdir()
    return path


def test_apt_reads_every_compression(tmp_path: Path) -> None:
    where = lists(tmp_path)
    (where / "deb.example_dists_stable_main_binary-amd64_Packages.lz4").write_bytes(
        lz4.frame.compress(PACKAGES.encode())
    )
    (where / "deb.example_dists_stable_contrib_binary-amd64_Packages.gz").write_bytes(
        gzip.compress(b"Package: jq\nVersion: 1.6-2.1\nSection: utils\nDescription: JSON processor\n")
    )
    (where / "deb.example_dists_stable_non-free_binary-amd64_Packages.xz").write_bytes(
        lzma.compress(b"Package: unrar\nVersion: 1:6.2.6-1\nSection: non-free/utils\nDescription: unarchiver\n")
    )
    (where / "deb.example_dists_stable_InRelease").write_text("not a package list")
    seen: list[float] = []

    found = {e.app: e for e in AptSource(str(where)).scan(seen.append)}

    assert set(found) == {"firefox-esr", "htop", "tree", "jq", "unrar"}  # no library, no translation
    assert found["firefox-esr"].kind is AppKind.GUI
    assert found["firefox-esr"].install == "apt-get install firefox-esr"
    assert found["htop"].kind is AppKind.CLI  # ncurses is a terminal toolkit
    assert found["htop"].description == "interactive processes viewer"
    assert found["unrar"].version == "1:6.2.6-1"
    assert not any(e.installed for e in found.values())
    assert seen[-1] == 1.0
    assert seen == sorted(seen)


def test_apt_merges_a_package_across_lists_as_apt_would_install_it(tmp_path: Path) -> None:
    where = lists(tmp_path)
    (where / "deb.example_dists_bookworm_main_binary-amd64_Packages").write_text(PACKAGES)
    # A security list: a newer version (by Debian's order, not by text: 115.10 > 115.9), and no debtags.
    (where / "security.example_dists_bookworm-security_main_binary-amd64_Packages").write_text(FIREFOX_UPDATE)
    # An older version in updates must not win, whichever file is read last.
    (where / "deb.example_dists_bookworm-updates_main_binary-amd64_Packages").write_text(
        FIREFOX_UPDATE.replace("115.10.0esr", "115.2.0esr")
    )

    (firefox,) = [e for e in AptSource(str(where)).scan() if e.app == "firefox-esr"]

    assert firefox.version == "115.10.0esr-1~deb12u1"
    assert firefox.kind is AppKind.GUI  # the tags came from the release list
    assert "browser" in firefox.keywords


def test_apt_popularity_grows_with_a_package_family(tmp_path: Path) -> None:
    where = lists(tmp_path)
    stanzas = [f"Package: {name}\nVersion: 1\nSection: web\nDescription: x\n" for name in ("chroma", "chromium")]
    stanzas += [f"Package: chromium-{part}\nVersion: 1\nSection: web\nDescription: x\n" for part in ("driver", "shell")]
    (where / "x_Packages").write_text("\n".join(stanzas))

    found = {e.app: e.popularity for e in AptSource(str(where)).scan()}

    assert found["chromium"] > found["chroma"] == found["chromium-driver"]


def test_apt_without_lists_finds_nothing(tmp_path: Path) -> None:
    assert AptSource(str(tmp_path / "missing")).scan() == []


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("broken_Packages.lz4", b"this is not lz4 at all", "cannot read it"),
        ("text_Packages", b"Package: ok\nVersion: 1\n\nthis line is no field\n", "without a Package field"),
        ("cut_Packages", b"Package: half\n", "without Package or Version"),
        ("binary_Packages", b"Package: \xff\xfe\nVersion: 1\n", "cannot read it"),
    ],
)
def test_a_bad_list_says_which_file_and_what(tmp_path: Path, name: str, content: bytes, problem: str) -> None:
    where = lists(tmp_path)
    (where / name).write_bytes(content)

    with pytest.raises(PackageListError, match=problem) as raised:
        AptSource(str(where)).scan()
    assert name in str(raised.value)


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed here to compare with")
def test_version_order_is_dpkgs() -> None:
    versions = [
        "1.0", "1.0-1", "1:0.9", "1.0~rc1", "1.0+b1", "1.0a", "1.00", "1.0.1", "2.39.5-0+deb12u3",
        "115.9.1esr-1~deb12u1", "115.10.0esr-1~deb12u1", "0~", "1.0~~", "9.0.1378-2+deb12u2", "1.2.3-1ubuntu1",
    ]  # fmt: skip
    for a in versions:
        for b in versions:
            ours = (Version(a) > Version(b)) - (Version(a) < Version(b))
            theirs = next(
                result
                for op, result in (("lt", -1), ("eq", 0), ("gt", 1))
                if subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0
            )
            assert ours == theirs, (a, b)


def test_dpkg_lists_installed_packages_with_what_they_installed(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    git = machine.executable("git")
    machine.installed("git", "1:2.39.5-0+deb12u3", files=[git, "/usr/share/doc/git/README", "/usr/bin/git-shell"])
    machine.installed(
        "vim-common",
        "2:9.0.1378-2",
        files=["/usr/share/applications/vim.desktop", "/usr/bin/helpztags"],
        section="editors",
    )
    machine.installed("libc6", "2.36-9", section="libs", multi_arch=True)  # neither a program nor owns one
    machine.installed("libc-bin", "2.36-9", files=["/usr/bin/ldd"], section="libs", multi_arch=True)
    with (machine.dpkg / "status").open("a") as status:
        status.write("Package: removed\nStatus: deinstall ok config-files\nVersion: 1\n\n")

    found = {e.app: e for e in DpkgSource(str(machine.dpkg)).scan()}

    assert set(found) == {"git", "vim-common", "libc-bin"}
    assert found["git"].files == (str(git), "/usr/bin/git-shell")
    assert found["git"].installed
    assert found["git"].version == "1:2.39.5-0+deb12u3"
    assert found["git"].program
    assert not found["vim-common"].program  # installed a program, is none itself
    assert found["libc-bin"].files == ("/usr/bin/ldd",)  # a multi-arch package's list is <name>:<arch>.list


def test_dpkg_without_a_status_file_finds_nothing(tmp_path: Path) -> None:
    assert DpkgSource(str(tmp_path / "nothing")).scan() == []


def test_dpkg_records_that_cannot_be_read_fail_the_scan(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    machine.installed("git", "1", files=["/usr/bin/git"])
    (machine.dpkg / "info" / "git.list").write_bytes(b"/usr/bin/\xff\n")
    with pytest.raises(PackageListError, match=r"git\.list"):
        DpkgSource(str(machine.dpkg)).scan()

    (machine.dpkg / "info" / "git.list").write_text("/usr/bin/git\n")
    with (machine.dpkg / "status").open("a") as status:
        status.write("Package: cut-short\nStatus: install ok installed\n")  # a status file written half-way
    with pytest.raises(PackageListError, match="cut short"):
        DpkgSource(str(machine.dpkg)).scan()


def test_apt_read_in_parts_yields_what_one_read_yields(tmp_path: Path) -> None:
    where = lists(tmp_path)
    (where / "deb.example_dists_stable_main_binary-amd64_Packages").write_text(PACKAGES)
    (where / "security.example_dists_stable-security_main_binary-amd64_Packages").write_text(FIREFOX_UPDATE)
    (where / "empty.example_dists_stable_contrib_binary-amd64_Packages").write_text("")  # a component with nothing
    source = AptSource(str(where))

    whole = source.scan()
    parts = [source.scan_part(part, 3) for part in range(3)]

    assert sorted(e for part in parts for e in part) == sorted(whole)
    assert {e.app for e in whole} == {"firefox-esr", "htop", "tree"}
