"""Ranking: how a search orders candidates for what a person typed.

The query is compared, ignoring case and runs of spaces, with each candidate's *names* (its
`app`, its `name` and its aliases) and more weakly with its keywords. A candidate lands in the
best tier it reaches; each tier owns a band of ten points, so a better tier always outranks a
worse one:

    exact      90-100   the query is one of its names
    prefix     80-90    a name starts with the query
    word       70-80    a word of a name (split on spaces, `-`, `_`, `.`) starts with it
    substring  60-70    the query is inside a name
    keyword    50-60    a keyword, or a word of one, starts with it
    fuzzy      40-50    a name is a typo away: within 1 edit for queries of 3-5 characters, 2
                        for longer ones (restricted Damerau-Levenshtein: a swap of two
                        neighbouring letters is one edit)

Within its band a candidate scores, in this order of weight:

    +6     installed here and launchable (+3: installed, nothing starts it)
    +1.5   on the preferred OS (the selector's `os`, else the server's own)
    +1     x fit: how well the match fits, 0-1 (below)
    +0.49  x popularity: the sources' signal, 0-1 (apt priority, a package family, a desktop
           entry, a catalog's order)

so installed and launchable programs come before merely installable ones, the server's OS
before others, and only then do fit and popularity count. Ties go by name, then id.

Fit: for prefix, word and keyword matches it weighs what follows the query in the matched
term. Nothing: 1. A boundary (anything but a letter: ``firefox-esr``, ``python3``):
``0.75 + 0.25 x len(query)/len(term)``. More letters (``chroma``, ``vimix``):
``0.25 + 0.25 x len(query)/len(term)``. So a whole-word prefix always beats a prefix that runs
on inside a word, while between two of a kind popularity can outweigh length (``chrom`` finds
``chromium`` before ``chroma``). A substring scores ``len(query)/len(term)``, an exact match 1,
a typo 0.8 with one edit and 0.3 with two, 0.1 more when its letters are the name's, swapped
(``crul`` is ``curl`` before ``crun``; one edit always beats two).

`rank` scores every candidate: it is the definition, and the reference the tests hold the fast
`jobhouse.index.CandidateIndex` to.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from jobhouse.catalog import OS, Candidate, CandidateFilter

_WORD_SEPARATORS = re.compile(r"[\s\-_.]+")
INSTALLED_WEIGHT = 3.0
OS_BONUS = 1.5
FIT_WEIGHT = 1.0
POPULARITY_WEIGHT = 0.49
#: Edits a typo may have: none below 3 characters, 1 up to 5, then 2.
FUZZY_MIN_LENGTH = 3
FUZZY_TWO_EDITS_FROM = 6


class Tier(enum.IntEnum):
    """How a candidate matched; the value is the bottom of its band of scores."""

    EXACT = 90
    PREFIX = 80
    WORD = 70
    SUBSTRING = 60
    KEYWORD = 50
    FUZZY = 40

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Match:
    """A candidate that matched a query: its score (0-100, higher is better) and the tier that won."""

    candidate: Candidate
    score: float
    tier: Tier

    @property
    def reason(self) -> str:
        return self.tier.label


def fold(text: str) -> str:
    """How text is compared: case-folded, runs of whitespace as one space."""
    return " ".join(text.casefold().split())


def words(text: str) -> list[str]:
    return [w for w in _WORD_SEPARATORS.split(text) if w]


def names(candidate: Candidate) -> list[str]:
    """The folded names a query is compared with: app, name, aliases."""
    return list(dict.fromkeys(t for t in map(fold, (candidate.app, candidate.name, *candidate.aliases)) if t))


def keyword_tokens(keywords: Iterable[str]) -> set[str]:
    """Each keyword, folded, and each word of it: what the keyword tier compares with."""
    tokens: set[str] = set()
    for keyword in keywords:
        folded = fold(keyword)
        tokens.add(folded)
        tokens.update(words(folded))
    tokens.discard("")
    return tokens


def edits_allowed(needle: str) -> int:
    """How many edits a typo of this (folded) query may have."""
    if len(needle) < FUZZY_MIN_LENGTH:
        return 0
    return 2 if len(needle) >= FUZZY_TWO_EDITS_FROM else 1


def fit(needle: str, term: str) -> float:
    """The quality of a prefix match of `needle` on `term`: what follows it weighs."""
    if len(term) == len(needle):
        return 1.0
    tight = len(needle) / len(term)
    return 0.25 + 0.25 * tight if term[len(needle)].isalpha() else 0.75 + 0.25 * tight


def typo_fit(needle: str, term: str, edits: int) -> float:
    """The quality of a typo: one edit always beats two, and letters swapped (the same letters as
    the name) beat letters changed, so ``crul`` is ``curl`` before it is ``crun``."""
    swapped = 0.1 if sorted(needle) == sorted(term) else 0.0
    return (0.8 if edits == 1 else 0.3) + swapped


def score(tier: Tier, quality: float, candidate: Candidate, prefer: OS) -> float:
    """A candidate's score in its tier (see the module docstring); the index computes the same."""
    return (
        float(tier)
        + INSTALLED_WEIGHT * candidate.availability
        + (OS_BONUS if candidate.os == prefer else 0.0)
        + FIT_WEIGHT * quality
        + POPULARITY_WEIGHT * candidate.popularity
    )


def best_match(needle: str, candidate: Candidate) -> tuple[Tier, float] | None:
    """The best tier `candidate` reaches for the (folded) query, and its quality there."""
    terms = names(candidate)
    if needle in terms:
        return Tier.EXACT, 1.0
    prefixed = [fit(needle, t) for t in terms if t.startswith(needle)]
    if prefixed:
        return Tier.PREFIX, max(prefixed)
    worded = [fit(needle, w) for t in terms for w in words(t) if w.startswith(needle)]
    if worded:
        return Tier.WORD, max(worded)
    inside = [len(needle) / len(t) for t in terms if needle in t]
    if inside:
        return Tier.SUBSTRING, max(inside)
    tokens = [fit(needle, k) for k in keyword_tokens(candidate.keywords) if k.startswith(needle)]
    if tokens:
        return Tier.KEYWORD, max(tokens)
    allowed = edits_allowed(needle)
    typos = [typo_fit(needle, t, e) for t in terms if (e := OSA.distance(needle, t, score_cutoff=allowed)) <= allowed]
    if allowed and typos:
        return Tier.FUZZY, max(typos)
    return None


def order(match: Match) -> tuple[float, str, str]:
    return (-match.score, match.candidate.name.casefold(), match.candidate.id)


def rank(
    candidates: Iterable[Candidate], query: str, limit: int, where: CandidateFilter | None = None, prefer: OS = OS.LINUX
) -> list[Match]:
    """The best `limit` matches for `query` among the candidates `where` admits, best first."""
    needle = fold(query)
    if not needle or limit <= 0:
        return []
    matches = []
    for candidate in candidates:
        if where is not None and not where.admits(candidate):
            continue
        found = best_match(needle, candidate)
        if found is not None:
            tier, quality = found
            matches.append(Match(candidate, score(tier, quality, candidate, prefer), tier))
    return sorted(matches, key=order)[:limit]
