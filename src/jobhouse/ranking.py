"""Ranking: how a search orders candidates for what a person typed.

The query is compared, case-insensitively, with each candidate's `app` and `name`, and more weakly with
its keywords. A candidate lands in the best tier it reaches, and each tier owns a band of scores so a
better tier always outranks a worse one:

    exact      100      query equals app or name
    prefix     90-99    app or name starts with the query (shorter name = tighter = higher)
    word       80-89    a word of app or name (split on spaces, `-`, `_`, `.`) equals or starts with it
    substring  70-79    the query occurs inside app or name
    keyword    60-69    the query equals or starts a keyword (or a word of one)
    fuzzy      44-59    a typo away: difflib similarity of at least `FUZZY_THRESHOLD` with app or name

Candidates that reach no tier are dropped. Ties are broken by name, then id, so results are stable.
Fuzzy matching is by far the costliest test, so it runs only for candidates that missed every other
tier, and difflib's cheap upper bounds reject most of them before the real ratio is computed.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from jobhouse.catalog import Candidate

FUZZY_THRESHOLD = 0.75
_WORD_SEPARATORS = re.compile(r"[\s\-_.]+")


@dataclass(frozen=True, slots=True)
class Match:
    """A candidate that matched a query: its score (0-100, higher is better) and the tier that won."""

    candidate: Candidate
    score: float
    reason: str


def rank(candidates: Iterable[Candidate], query: str, limit: int) -> list[Match]:
    """The best `limit` matches for `query`, best first; [] for a blank query or a non-positive limit."""
    needle = " ".join(query.casefold().split())
    if not needle or limit <= 0:
        return []
    fuzzy = SequenceMatcher(None, "", needle)  # seq2 is the query, so difflib indexes it only once
    matches: list[Match] = []
    for candidate in candidates:
        app = candidate.app.casefold()
        name = candidate.name.casefold()
        tier = _direct_tier(needle, app, name) or _keyword_tier(needle, candidate.keywords)
        if tier is None:
            tier = _fuzzy_tier(fuzzy, app, name)
        if tier is not None:
            matches.append(Match(candidate, tier[1], tier[0]))
    return heapq.nsmallest(limit, matches, key=_order)


def _order(match: Match) -> tuple[float, str, str]:
    return (-match.score, match.candidate.name.casefold(), match.candidate.id)


def _tightness(needle: str, target: str) -> float:
    """How much of `target` the matched `needle` covers, in (0, 1]."""
    return len(needle) / len(target)


def _direct_tier(needle: str, app: str, name: str) -> tuple[str, float] | None:
    """The exact, prefix, word or substring tier against app and name, or None."""
    if needle in (app, name):
        return ("exact", 100.0)
    prefixed = [t for t in (app, name) if t.startswith(needle)]
    if prefixed:
        return ("prefix", 90.0 + 9.0 * _tightness(needle, min(prefixed, key=len)))
    if needle not in app and needle not in name:
        return None  # every word or prefix match is also a substring match, so none of those either
    words = [w for t in (app, name) for w in _WORD_SEPARATORS.split(t) if w.startswith(needle)]
    if words:
        return ("word", 80.0 + 9.0 * _tightness(needle, min(words, key=len)))
    inside = [t for t in (app, name) if needle in t]
    return ("substring", 70.0 + 9.0 * _tightness(needle, min(inside, key=len)))


def _keyword_tier(needle: str, keywords: tuple[str, ...]) -> tuple[str, float] | None:
    """The keyword tier: a keyword, or a word of one, that equals or starts with the query."""
    best: str | None = None
    for keyword in keywords:
        folded = keyword.casefold()
        if needle not in folded:
            continue
        for token in (folded, *_WORD_SEPARATORS.split(folded)):
            if token.startswith(needle) and (best is None or len(token) < len(best)):
                best = token
    if best is None:
        return None
    return ("keyword", 60.0 + 9.0 * _tightness(needle, best))


def _fuzzy_tier(matcher: SequenceMatcher[str], app: str, name: str) -> tuple[str, float] | None:
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
