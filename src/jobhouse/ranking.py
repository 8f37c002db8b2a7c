"""Ranking: how a search orders candidates for what a person typed.

The query is compared, case-insensitively, with each candidate's `app` and `name`, and more weakly with
its keywords. A candidate lands in the best tier it reaches, and each tier owns a band of scores so a
better tier always outranks a worse one:

    exact      100      query equals app or name
    prefix     90-99    app or name starts with the query (shorter name = tighter = higher)
    word       80-89    a word of app or name (split on spaces, `-`, `_`, `.`) equals or starts with it
    substring  70-79    the query occurs inside app or name
    keyword    60-69    the query equals or starts a keyword (or a word of one)
    fuzzy      44-59    a typo away: app or name shares at least half the query's (edge-padded)
                        trigrams, and their difflib similarity is at least `FUZZY_THRESHOLD`

Candidates that reach no tier are dropped. Ties are broken by name, then id, so results are stable.

`rank` scores every candidate: it is the definition, and the reference the tests hold the fast
`jobhouse.index.CandidateIndex` to.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from jobhouse.catalog import Candidate

FUZZY_THRESHOLD = 0.75
#: The share of the query's trigrams a fuzzy match must have.
FUZZY_SHARED = 0.5
_WORD_SEPARATORS = re.compile(r"[\s\-_.]+")


@dataclass(frozen=True, slots=True)
class Match:
    """A candidate that matched a query: its score (0-100, higher is better) and the tier that won."""

    candidate: Candidate
    score: float
    reason: str


def fold(text: str) -> str:
    """How text is compared: case-folded, runs of whitespace as one space."""
    return " ".join(text.casefold().split())


def words(text: str) -> list[str]:
    return [w for w in _WORD_SEPARATORS.split(text) if w]


def trigrams(text: str) -> set[str]:
    """The three-letter runs of `text`."""
    return {text[i : i + 3] for i in range(len(text) - 2)}


def padded_trigrams(text: str) -> set[str]:
    """Trigrams with the word's edges marked (as PostgreSQL's pg_trgm does): short words get some too."""
    return trigrams(f"  {text} ")


def keyword_tokens(keywords: Iterable[str]) -> set[str]:
    """Each keyword, folded, and each word of it: what the keyword tier compares with."""
    tokens: set[str] = set()
    for keyword in keywords:
        folded = fold(keyword)
        tokens.add(folded)
        tokens.update(words(folded))
    tokens.discard("")
    return tokens


def order(match: Match) -> tuple[float, str, str]:
    return (-match.score, match.candidate.name.casefold(), match.candidate.id)


def rank(candidates: Iterable[Candidate], query: str, limit: int) -> list[Match]:
    """The best `limit` matches for `query`, best first; [] for a blank query or a non-positive limit."""
    needle = fold(query)
    if not needle or limit <= 0:
        return []
    matcher = SequenceMatcher(None, "", needle)  # seq2 is the query, so difflib indexes it only once
    grams = padded_trigrams(needle)
    matches: list[Match] = []
    for candidate in candidates:
        app, name = fold(candidate.app), fold(candidate.name)
        tier = direct_tier(needle, app, name) or keyword_tier(needle, candidate.keywords)
        if tier is None and shares_enough(grams, app, name):
            tier = fuzzy_tier(matcher, app, name)
        if tier is not None:
            matches.append(Match(candidate, tier[1], tier[0]))
    return heapq.nsmallest(limit, matches, key=order)


def _tightness(needle: str, target: str) -> float:
    """How much of `target` the matched `needle` covers, in (0, 1]."""
    return len(needle) / len(target)


def direct_tier(needle: str, app: str, name: str) -> tuple[str, float] | None:
    """The exact, prefix, word or substring tier against (folded) app and name, or None."""
    if needle in (app, name):
        return ("exact", 100.0)
    prefixed = [t for t in (app, name) if t.startswith(needle)]
    if prefixed:
        return ("prefix", 90.0 + 9.0 * _tightness(needle, min(prefixed, key=len)))
    if needle not in app and needle not in name:
        return None  # every word or prefix match is also a substring match, so none of those either
    found = [w for t in (app, name) for w in words(t) if w.startswith(needle)]
    if found:
        return ("word", 80.0 + 9.0 * _tightness(needle, min(found, key=len)))
    inside = [t for t in (app, name) if needle in t]
    return ("substring", 70.0 + 9.0 * _tightness(needle, min(inside, key=len)))


def keyword_tier(needle: str, keywords: Iterable[str]) -> tuple[str, float] | None:
    """The keyword tier: a keyword, or a word of one, that equals or starts with the query."""
    best = min((t for t in keyword_tokens(keywords) if t.startswith(needle)), key=len, default=None)
    if best is None:
        return None
    return ("keyword", 60.0 + 9.0 * _tightness(needle, best))


def shares_enough(grams: set[str], app: str, name: str) -> bool:
    """Whether app or name shares enough of the query's padded trigrams to be a fuzzy match at all."""
    return len(grams & (padded_trigrams(app) | padded_trigrams(name))) >= fuzzy_share(grams)


def fuzzy_share(grams: set[str]) -> int:
    """How many of the query's padded trigrams a fuzzy match must share."""
    return max(1, math.ceil(len(grams) * FUZZY_SHARED))


def fuzzy_tier(matcher: SequenceMatcher[str], app: str, name: str) -> tuple[str, float] | None:
    """The fuzzy tier: the best difflib ratio of app or name with the query, if above the threshold."""
    best = 0.0
    for target in (app, name) if app != name else (app,):
        matcher.set_seq1(target)
        if matcher.real_quick_ratio() < FUZZY_THRESHOLD or matcher.quick_ratio() < FUZZY_THRESHOLD:
            continue
        best = max(best, matcher.ratio())
    if best < FUZZY_THRESHOLD:
        return None
    return ("fuzzy", 59.0 * best)
