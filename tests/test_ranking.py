"""Ranking orders candidates the way a person searching for an application expects."""

from __future__ import annotations

from jobhouse.catalog import OS, AppKind, Candidate, CandidateFilter, version_matches, version_parts
from jobhouse.ranking import Match, rank


def app(
    name: str,
    display: str | None = None,
    *,
    keywords: tuple[str, ...] = (),
    os: OS = OS.LINUX,
    installed: bool = False,
    launch: str | None = None,
    popularity: float = 0.0,
    cid: str | None = None,
    **fields: object,
) -> Candidate:
    return Candidate(
        id=cid or f"{os.value}:{name}",
        app=name,
        name=display or name,
        os=os,
        kind=AppKind.GUI,
        sources=("test",),
        keywords=keywords,
        installed=installed,
        launch=launch,
        popularity=popularity,
        **fields,  # type: ignore[arg-type]
    )


CATALOG = [
    app("firefox", "Firefox", keywords=("Internet", "Web Browser")),
    app("firefox-esr", "Firefox ESR"),
    app("fire", "Fire"),
    app("gnome-firewall", "GNOME Firewall"),
    app("bonfire", "Bonfire"),
    app("thunderbird", "Thunderbird", keywords=("Mail", "Email")),
    app("chromium", "Chromium", keywords=("Web Browser",)),
    app("htop", "Htop", keywords=("Process Viewer",)),
]


def summary(matches: list[Match]) -> list[tuple[str, str]]:
    return [(m.candidate.app, m.reason) for m in matches]


def test_tiers_order_exact_prefix_word_substring() -> None:
    matches = rank(CATALOG, "fire", limit=10)

    assert summary(matches) == [
        ("fire", "exact"),
        ("firefox", "prefix"),
        ("firefox-esr", "prefix"),
        ("gnome-firewall", "word"),
        ("bonfire", "substring"),
    ]
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert [int(s // 10) * 10 for s in scores] == [90, 80, 80, 70, 60]


def test_matching_ignores_case_and_surrounding_space() -> None:
    assert summary(rank(CATALOG, "  FIREFOX ", limit=1)) == [("firefox", "exact")]
    assert summary(rank(CATALOG, "Firefox ESR", limit=1)) == [("firefox-esr", "exact")]


def test_keywords_match_below_names() -> None:
    matches = rank(CATALOG, "browser", limit=10)

    assert summary(matches) == [("chromium", "keyword"), ("firefox", "keyword")]
    assert all(50 <= m.score < 60 for m in matches)
    assert summary(rank(CATALOG, "mail", limit=10)) == [("thunderbird", "keyword")]


def test_swapped_letters_and_other_typos_find_the_application() -> None:
    catalog = [app("python3"), app("docker"), app("curl"), app("crun"), app("thunderbird"), app("htop")]

    for typo, wanted in [("pyhton", "python3"), ("dokcer", "docker"), ("crul", "curl"), ("thunderbrid", "thunderbird")]:
        first = rank(catalog, typo, limit=5)[0]
        assert (first.candidate.app, first.reason) == (wanted, "fuzzy"), typo
        assert 40 <= first.score < 50
    assert summary(rank(catalog, "htp", limit=5)) == [("htop", "fuzzy")]  # a missing letter is one edit too
    assert rank(catalog, "zzzzzz", limit=5) == []
    assert rank(catalog, "hx", limit=5) == []  # two letters are too short to guess at


def test_one_edit_beats_two_whatever_the_popularity() -> None:
    catalog = [app("gold", installed=True, launch="/usr/bin/gold", popularity=1.0)]
    catalog.append(app("gcloud", installed=True, launch="/usr/bin/gcloud"))

    assert [m.candidate.app for m in rank(catalog, "gcolud", limit=5)] == ["gcloud", "gold"]


def test_a_real_match_beats_a_fuzzy_one() -> None:
    catalog = [app("firefx-tools"), app("firefox")]

    assert summary(rank(catalog, "firefx", limit=10)) == [("firefx-tools", "prefix"), ("firefox", "fuzzy")]


def test_installed_and_launchable_come_first_within_a_tier() -> None:
    catalog = [
        app("git", cid="apt:git", popularity=1.0),
        app("git", cid="here:git", installed=True, launch="/usr/bin/git"),
        app("git", cid="dpkg:git", installed=True),
    ]

    assert [m.candidate.id for m in rank(catalog, "git", limit=3)] == ["here:git", "dpkg:git", "apt:git"]


def test_the_servers_os_comes_first_when_none_is_asked_for() -> None:
    catalog = [app("python3", os=OS.WINDOWS), app("python3", os=OS.MACOS), app("python3", os=OS.LINUX)]

    assert rank(catalog, "python3", limit=1, prefer=OS.LINUX)[0].candidate.os is OS.LINUX
    assert rank(catalog, "python3", limit=1, prefer=OS.MACOS)[0].candidate.os is OS.MACOS
    # A preference, not a filter: the others still come.
    assert len(rank(catalog, "python3", limit=5, prefer=OS.LINUX)) == 3


def test_a_prefix_ending_at_a_word_beats_one_that_runs_on() -> None:
    catalog = [app("vimix"), app("vim-gtk3"), app("codeblocks"), app("code-oss")]

    assert [m.candidate.app for m in rank(catalog, "vim", limit=2)] == ["vim-gtk3", "vimix"]
    assert [m.candidate.app for m in rank(catalog, "code", limit=2)] == ["code-oss", "codeblocks"]


def test_popularity_outweighs_length_between_prefixes_of_a_kind() -> None:
    catalog = [app("chroma", popularity=0.1), app("chromium", popularity=0.4), app("chromhmm", popularity=0.1)]

    assert [m.candidate.app for m in rank(catalog, "chrom", limit=3)] == ["chromium", "chroma", "chromhmm"]


def test_aliases_match_like_names() -> None:
    ripgrep = app("rg", installed=True, launch="/usr/bin/rg")._replace(aliases=("ripgrep",))

    assert summary(rank([ripgrep, app("ripgrep-all")], "ripgrep", limit=2)) == [
        ("rg", "exact"),
        ("ripgrep-all", "prefix"),
    ]


def test_ties_are_broken_by_name_then_id() -> None:
    catalog = [app("editor", "Zed", cid="b"), app("editor", "atom", cid="c"), app("editor", "Atom", cid="a")]

    matches = rank(catalog, "editor", limit=10)

    assert [m.candidate.id for m in matches] == ["a", "c", "b"]
    assert len({m.score for m in matches}) == 1


def test_filters_narrow_before_ranking() -> None:
    catalog = [
        app("gimp", version="2.10.34-1", os=OS.LINUX),
        app("gimp", version="3.0", os=OS.WINDOWS),
        app("gimp-plugin", version="43.1-2"),
    ]

    assert [m.candidate.id for m in rank(catalog, "gimp", 5, CandidateFilter(os=OS.WINDOWS))] == ["windows:gimp"]
    assert [m.candidate.id for m in rank(catalog, "gimp", 5, CandidateFilter(version="2.10"))] == ["linux:gimp"]
    assert rank(catalog, "gimp", 5, CandidateFilter(version="4")) == []  # 43.1 is not version 4
    assert rank(catalog, "gimp", 5, CandidateFilter(kind=AppKind.CLI)) == []
    assert rank(catalog, "gimp", 5, CandidateFilter(source="elsewhere")) == []


def test_versions_compare_by_component() -> None:
    assert version_parts("1:2.39.5-0+deb12u3") == (2, 39, 5, 0, "deb", 12, "u", 3)
    assert version_matches("4.2-1", "4")
    assert version_matches("4", "4")
    assert not version_matches("43.1-2", "4")
    assert version_matches("1.2.3", "1.2")
    assert not version_matches("1.20", "1.2")
    assert version_matches("115.9.1esr-1~deb12u1", "115.9.1esr")
    assert version_matches("1:9.0.1378-2", "9.0")  # the epoch is not part of what people call the version
    assert not version_matches(None, "1")
    assert not version_matches("1.0", "...")


def test_limit_cuts_after_sorting() -> None:
    assert summary(rank(CATALOG, "fire", limit=1)) == [("fire", "exact")]
    assert rank(CATALOG, "fire", limit=0) == []


def test_blank_query_matches_nothing() -> None:
    assert rank(CATALOG, "", limit=10) == []
    assert rank(CATALOG, "   \t", limit=10) == []
