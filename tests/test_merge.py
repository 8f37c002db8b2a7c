"""The merge makes one candidate per application per OS from what every source knows of it."""

from __future__ import annotations

from jobhouse.catalog import OS, AppKind, Candidate, Entry
from jobhouse.merge import merge

ORDER = ["path", "desktop", "dpkg", "apt", "well-known"]


def on_path(name: str, path: str | None = None, target: str | None = None) -> Entry:
    path = path or f"/usr/bin/{name}"
    files = (path, target) if target else (path,)
    return Entry("path", f"path:{name}", name, name, OS.LINUX, AppKind.CLI, launch=path, installed=True, files=files)


def desktop(file_id: str, app: str, name: str, command: str, *, terminal: bool = False) -> Entry:
    return Entry(
        "desktop", f"desktop:{file_id}", app, name, OS.LINUX, AppKind.CLI if terminal else AppKind.GUI,
        launch=command, description=f"{name}, from its menu entry", keywords=("Editor",), installed=True,
        popularity=0.5, files=(f"/usr/share/applications/{file_id}",),
    )  # fmt: skip


def package(
    source: str, name: str, version: str, *files: str, kind: AppKind = AppKind.CLI, program: bool = True
) -> Entry:
    return Entry(
        source, f"{source}:{name}", name, name, OS.LINUX, kind, version=version, install=f"apt-get install {name}",
        description=f"{name} from Debian", installed=source == "dpkg", popularity=0.3, files=files, program=program,
    )  # fmt: skip


def catalog(app: str, name: str, os: OS, version: str | None = None) -> Entry:
    return Entry(
        "well-known", f"well-known:{os}:{app}", app, name, os, AppKind.GUI, version=version, launch=f"open {app}"
    )


def by_id(entries: list[Entry]) -> dict[str, Candidate]:
    return {c.id: c for c in merge(entries, ORDER)}


def test_one_program_is_one_candidate_that_knows_everything() -> None:
    found = by_id(
        [
            on_path("firefox-esr"),
            desktop("firefox-esr.desktop", "firefox-esr", "Firefox ESR", "firefox-esr"),
            package(
                "dpkg",
                "firefox-esr",
                "115.9.1esr-1",
                "/usr/bin/firefox-esr",
                "/usr/share/applications/firefox-esr.desktop",
            ),
            package("apt", "firefox-esr", "115.10.0esr-1", kind=AppKind.GUI),
            catalog("firefox-esr", "Firefox ESR", OS.LINUX, version="9"),
        ]
    )

    assert list(found) == ["linux:firefox-esr"]
    firefox = found["linux:firefox-esr"]
    assert firefox.name == "Firefox ESR"  # the desktop entry's name
    assert firefox.launch == "/usr/bin/firefox-esr"  # the executable on PATH
    assert firefox.version == "115.9.1esr-1"  # what is installed, not what apt would install
    assert firefox.install == "apt-get install firefox-esr"
    assert firefox.description == "firefox-esr from Debian"
    assert firefox.kind is AppKind.GUI
    assert firefox.launchable
    assert firefox.sources == ("path", "desktop", "dpkg", "apt", "well-known")
    assert firefox.package == "firefox-esr"
    assert firefox.source == "path"


def test_what_apt_offers_alone_is_installable_not_installed() -> None:
    (gimp,) = merge([package("apt", "gimp", "2.10.34-1", kind=AppKind.GUI)], ORDER)

    assert (gimp.id, gimp.version, gimp.kind, gimp.installed, gimp.launch) == (
        "linux:gimp", "2.10.34-1", AppKind.GUI, False, None
    )  # fmt: skip
    assert gimp.availability == 0


def test_a_program_of_a_package_named_otherwise_takes_its_packages_facts() -> None:
    found = by_id(
        [
            on_path("ls", "/usr/bin/ls"),
            on_path("cat", "/usr/bin/cat"),
            package("dpkg", "coreutils", "9.1-1", "/bin/ls", "/bin/cat"),  # listed under /bin: one file on merged /usr
        ]
    )

    ls = found["linux:ls"]
    assert (ls.version, ls.package, ls.install) == ("9.1-1", "coreutils", "apt-get install coreutils")
    assert ls.sources == ("path", "dpkg")
    assert ls.launchable
    assert found["linux:coreutils"].availability == 1  # installed, nothing of its name to start


def test_a_package_with_one_program_joins_it_as_an_alias() -> None:
    found = by_id(
        [on_path("rg"), package("dpkg", "ripgrep", "13.0.0-4", "/usr/bin/rg"), package("apt", "ripgrep", "13")]
    )

    assert list(found) == ["linux:rg"]
    assert found["linux:rg"].aliases == ("ripgrep",)
    assert found["linux:rg"].version == "13.0.0-4"


def test_a_package_that_is_no_program_only_says_where_programs_come_from() -> None:
    found = by_id(
        [
            on_path("helpztags"),
            package(
                "dpkg",
                "vim-common",
                "2:9.0",
                "/usr/bin/helpztags",
                "/usr/share/applications/vim.desktop",
                program=False,
            ),
        ]
    )

    assert list(found) == ["linux:helpztags"]
    assert found["linux:helpztags"].aliases == ()
    assert found["linux:helpztags"].package == "vim-common"


def test_links_lead_to_the_package_of_the_file_they_point_to() -> None:
    found = by_id(
        [
            on_path("vim", "/usr/bin/vim", target="/usr/bin/vim.basic"),
            desktop("vim.desktop", "vim", "Vim", "vim", terminal=True),
            package("dpkg", "vim", "2:9.0.1378-2", "/usr/bin/vim.basic"),
            package("dpkg", "vim-common", "2:9.0.1378-2", "/usr/share/applications/vim.desktop", program=False),
        ]
    )

    vim = found["linux:vim"]
    assert (vim.name, vim.kind, vim.version, vim.launch) == ("Vim", AppKind.CLI, "2:9.0.1378-2", "/usr/bin/vim")
    assert list(found) == ["linux:vim"]


def test_a_desktop_entry_joins_the_program_its_command_starts() -> None:
    found = by_id(
        [
            on_path("gnome-calculator"),
            desktop("org.gnome.Calculator.desktop", "calculator", "Calculator", "gnome-calculator"),
            desktop("extra.desktop", "extra", "Calculator (another window)", "gnome-calculator --new"),
        ]
    )

    assert found["linux:gnome-calculator"].name == "Calculator"
    assert found["linux:gnome-calculator"].aliases == ("calculator",)
    assert found["linux:extra"].launch == "gnome-calculator --new"  # the program already has its entry


def test_a_program_installed_outside_apt_does_not_claim_apts_version() -> None:
    (cargo,) = merge([on_path("cargo", "/root/.cargo/bin/cargo"), package("apt", "cargo", "0.66.0")], ORDER)

    assert cargo.installed
    assert cargo.version is None  # apt's cargo is not the one on PATH
    assert cargo.install == "apt-get install cargo"


def test_catalogs_join_their_os_and_stand_alone_elsewhere() -> None:
    found = by_id(
        [on_path("python3"), catalog("python3", "Python 3", OS.LINUX), catalog("python3", "Python 3", OS.WINDOWS)]
    )

    assert sorted(found) == ["linux:python3", "windows:python3"]
    assert found["linux:python3"].name == "Python 3"
    assert found["linux:python3"].launch == "/usr/bin/python3"
    assert not found["windows:python3"].installed


def test_ids_stay_the_same_across_merges() -> None:
    entries = [on_path("git"), package("dpkg", "git", "1", "/usr/bin/git"), package("apt", "git", "2")]

    assert (
        [c.id for c in merge(entries, ORDER)] == [c.id for c in merge(list(reversed(entries)), ORDER)] == ["linux:git"]
    )
