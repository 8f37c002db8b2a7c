"""Ranking orders candidates the way a person searching for an application expects."""

from __future__ import annotations

import random
import string
import time

from jobhouse.catalog import OS, AppKind, Candidate
from jobhouse.ranking import Match, rank


def _candidate(app: str, name: str | None = None, keywords: tuple[str, ...] = (), cid: str | None = None) -> Candidate:
    return Candidate(
        id=cid or f"test:{app}",
        app=app,
        name=name or app,
        os=OS.LINUX,
        kind=AppKind.GUI,
        source="test",
        keywords=keywords,
    )


CATALOG = [
    _candidate("firefox", "Firefox", ("Internet", "Web Browser")),
    _candidate("firefox-esr", "Firefox ESR"),
    _candidate("fire", "Fire"),
    _candidate("gnome-firewall", "GNOME Firewall"),
    _candidate("bonfire", "Bonfire"),
    _candidate("thunderbird", "Thunderbird", ("Mail", "Email")),
    _candidate("chromium", "Chromium", ("Web Browser",)),
    _candidate("htop", "Htop", ("Process Viewer",)),
]


def _summary(matches: list[Match]) -> list[tuple[str, str]]:
    return [(m.candidate.app, m.reason) for m in matches]


def test_tiers_order_exact_prefix_word_substring() -> None:
    matches = rank(CATALOG, "fire", limit=10)

    assert _summary(matches) == [
        ("fire", "exact"),
        ("firefox", "prefix"),
        ("firefox-esr", "prefix"),
        ("gnome-firewall", "word"),
        ("bonfire", "substring"),
    ]
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == 100.0
    assert 90 <= scores[1] < 100
    assert 80 <= scores[3] < 90
    assert 70 <= scores[4] < 80


def test_matching_ignores_case_and_surrounding_space() -> None:
    assert _summary(rank(CATALOG, "  FIREFOX ", limit=1)) == [("firefox", "exact")]
    assert _summary(rank(CATALOG, "Firefox ESR", limit=1)) == [("firefox-esr", "exact")]


def test_keywords_match_below_names() -> None:
    matches = rank(CATALOG, "browser", limit=10)

    assert _summary(matches) == [("chromium", "keyword"), ("firefox", "keyword")]
    assert all(60 <= m.score < 70 for m in matches)
    assert _summary(rank(CATALOG, "mail", limit=10)) == [("thunderbird", "keyword")]


def test_typos_still_find_the_application() -> None:
    firefox, *_ = rank(CATALOG, "firefx", limit=10)
    [thunderbird] = rank(CATALOG, "thunderbrid", limit=10)

    assert (firefox.candidate.app, firefox.reason) == ("firefox", "fuzzy")
    assert (thunderbird.candidate.app, thunderbird.reason) == ("thunderbird", "fuzzy")
    assert 0 < firefox.score < 60
    assert _summary(rank(CATALOG, "htp", limit=10)) == [("htop", "fuzzy")]
    assert rank(CATALOG, "zzzzzz", limit=10) == []


def test_a_real_match_beats_a_fuzzy_one() -> None:
    catalog = [_candidate("firefx-tools"), _candidate("firefox")]

    assert _summary(rank(catalog, "firefx", limit=10)) == [("firefx-tools", "prefix"), ("firefox", "fuzzy")]


def test_tighter_matches_score_higher_within_a_tier() -> None:
    catalog = [_candidate("vimdiff-extended"), _candidate("vimdiff"), _candidate("vim-x")]

    assert [m.candidate.app for m in rank(catalog, "vi", limit=10)] == [
        "vim-x",
        "vimdiff",
        "vimdiff-extended",
    ]


def test_ties_are_broken_by_name_then_id() -> None:
    catalog = [
        _candidate("editor", "Zed", cid="b"),
        _candidate("editor", "atom", cid="c"),
        _candidate("editor", "Atom", cid="a"),
    ]

    matches = rank(catalog, "editor", limit=10)

    assert [m.candidate.id for m in matches] == ["a", "c", "b"]
    assert {m.score for m in matches} == {100.0}


def test_limit_cuts_after_sorting() -> None:
    assert _summary(rank(CATALOG, "fire", limit=2)) == [("fire", "exact"), ("firefox", "prefix")]
    assert rank(CATALOG, "fire", limit=0) == []


def test_blank_query_matches_nothing() -> None:
    assert rank(CATALOG, "", limit=10) == []
    assert rank(CATALOG, "   \t", limit=10) == []


def test_a_hundred_thousand_candidates() -> None:
    rng = random.Random(1234)
    letters = string.ascii_lowercase
    catalog = [
        _candidate(
            "".join(rng.choices(letters, k=rng.randint(4, 12))),
            " ".join("".join(rng.choices(letters, k=rng.randint(3, 8))).title() for _ in range(rng.randint(1, 3))),
            tuple("".join(rng.choices(letters, k=6)) for _ in range(rng.randint(0, 3))),
            cid=f"gen:{i}",
        )
        for i in range(100_000)
    ]
    catalog.append(_candidate("firefox", "Firefox"))

    started = time.perf_counter()
    matches = rank(catalog, "firefx", limit=20)
    prefix_matches = rank(catalog, "ab", limit=20)
    elapsed = time.perf_counter() - started

    assert elapsed < 10
    assert matches[0].candidate.app == "firefox"
    assert len(prefix_matches) == 20
    assert prefix_matches[0].score >= prefix_matches[-1].score
