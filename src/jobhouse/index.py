"""The in-memory search index over merged candidates: `rank`'s answers, fast.

`jobhouse.ranking.rank` defines the order by scoring every candidate. `CandidateIndex` gives the
same answers without looking at every candidate: each tier is read from a structure that holds
exactly its matches, scored in bulk with numpy, and a search stops at the first tiers that fill
`limit` (a worse tier never outranks a better one):

- exact and prefix: the sorted list of names (a prefix is a range of it);
- word: the sorted list of the words of names;
- substring: every name in one text, searched by the C string search;
- keyword: the sorted list of keyword tokens;
- fuzzy: `jobhouse.typos.TypoIndex`, a bigram filter before rapidfuzz compares.

An index is immutable; `jobhouse.search.Searcher` builds a new one when the store's candidates
change and swaps it in whole.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from jobhouse.catalog import OS, AppKind, Candidate, CandidateFilter, version_matches
from jobhouse.ranking import (
    FIT_WEIGHT,
    INSTALLED_WEIGHT,
    OS_BONUS,
    POPULARITY_WEIGHT,
    Match,
    Tier,
    edits_allowed,
    fold,
    keyword_tokens,
    names,
    typo_fit,
    words,
)
from jobhouse.typos import TypoIndex

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
_SUBSTRING_SCAN_CAP = 200_000
_OS_CODES = {os: code for code, os in enumerate(OS)}
_KIND_CODES = {kind: code for code, kind in enumerate(AppKind)}


class _Terms:
    """Terms (names, words or keyword tokens) with their candidate, sorted for prefix ranges."""

    def __init__(self, pairs: Iterable[tuple[str, int]]) -> None:
        ordered = sorted(set(pairs))
        self.texts = [text for text, _ in ordered]
        self.owners = np.fromiter((owner for _, owner in ordered), dtype=np.int64, count=len(ordered))
        self.lengths = np.fromiter((len(text) for text in self.texts), dtype=np.int64, count=len(ordered))

    def starting(self, needle: str) -> tuple[Ints, Floats]:
        """The owners of terms starting with `needle`, and the fit of each (`ranking.fit`)."""
        start = bisect.bisect_left(self.texts, needle)
        end = bisect.bisect_left(self.texts, needle + "\U0010ffff", lo=start)
        size = len(needle)
        lengths = self.lengths[start:end]
        tight = size / lengths
        # A letter after the prefix runs on inside a word; anything else is a boundary (`ranking.fit`).
        runs_on = np.array([text[size : size + 1].isalpha() for text in self.texts[start:end]], dtype=bool)
        fit = np.where(lengths == size, 1.0, np.where(runs_on, 0.25 + 0.25 * tight, 0.75 + 0.25 * tight))
        return self.owners[start:end], fit


class CandidateIndex:
    """Candidates, indexed for `search`; immutable once built."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        self.candidates = list(candidates)
        count = len(self.candidates)
        folded = [names(c) for c in self.candidates]
        self._names = _Terms((t, i) for i, terms in enumerate(folded) for t in terms)
        self._words = _Terms((w, i) for i, terms in enumerate(folded) for t in terms for w in words(t))
        self._keywords = _Terms((k, i) for i, c in enumerate(self.candidates) for k in keyword_tokens(c.keywords))
        self._blob = "\n".join(self._names.texts)
        self._starts = np.cumsum([0] + [len(t) + 1 for t in self._names.texts[:-1]], dtype=np.int64)
        self._owners_of: dict[str, list[int]] = defaultdict(list)
        for text, owner in zip(self._names.texts, self._names.owners.tolist(), strict=True):
            self._owners_of[text].append(owner)
        self._typo_index = TypoIndex(list(self._owners_of))
        self._availability = np.array([c.availability for c in self.candidates], dtype=np.float64)
        self._popularity = np.array([c.popularity for c in self.candidates], dtype=np.float64)
        self._os = np.array([_OS_CODES[c.os] for c in self.candidates], dtype=np.int8)
        self._kind = np.array([_KIND_CODES[c.kind] for c in self.candidates], dtype=np.int8)
        self._sources = {
            source: np.array([source in c.sources for c in self.candidates], dtype=bool)
            for source in {s for c in self.candidates for s in c.sources}
        }
        by_name = sorted(range(count), key=lambda i: (self.candidates[i].name.casefold(), self.candidates[i].id))
        self._name_rank = np.empty(count, dtype=np.int64)
        self._name_rank[by_name] = np.arange(count, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.candidates)

    def search(
        self, query: str, limit: int, where: CandidateFilter | None = None, prefer: OS = OS.LINUX
    ) -> list[Match]:
        """The best `limit` matches for `query` among the candidates `where` admits, best first."""
        needle = fold(query)
        if not needle or limit <= 0 or not self.candidates:
            return []
        open_ = self._admitted(where or CandidateFilter())
        prefer_code = _OS_CODES[prefer]
        found: list[tuple[Ints, Floats, Tier]] = []
        total = 0
        for tier in Tier:
            owners, quality = self._tier(tier, needle)
            keep = open_[owners]
            owners, quality = owners[keep], quality[keep]
            if where is not None and where.version is not None and len(owners):
                versions = [version_matches(self.candidates[o].version, where.version) for o in owners.tolist()]
                owners, quality = owners[versions], quality[versions]
            owners, quality = _best_per_owner(owners, quality)
            if not len(owners):
                continue
            open_[owners] = False
            scores = (
                float(tier)
                + INSTALLED_WEIGHT * self._availability[owners]
                + np.where(self._os[owners] == prefer_code, OS_BONUS, 0.0)
                + FIT_WEIGHT * quality
                + POPULARITY_WEIGHT * self._popularity[owners]
            )
            found.append((owners, scores, tier))
            total += len(owners)
            if total >= limit:
                break
        if not found:
            return []
        owners = np.concatenate([f[0] for f in found])
        scores = np.concatenate([f[1] for f in found])
        tiers = np.concatenate([np.full(len(f[0]), int(f[2])) for f in found])
        best = np.lexsort((self._name_rank[owners], -scores))[:limit]
        return [
            Match(self.candidates[owner], float(score), Tier(tier))
            for owner, score, tier in zip(
                owners[best].tolist(), scores[best].tolist(), tiers[best].tolist(), strict=True
            )
        ]

    def _tier(self, tier: Tier, needle: str) -> tuple[Ints, Floats]:
        """Every (candidate, quality) pair of a tier's matches; a candidate may come more than once."""
        if tier is Tier.EXACT or tier is Tier.PREFIX:
            owners, fit = self._names.starting(needle)
            exact = fit == 1.0
            return (owners[exact], fit[exact]) if tier is Tier.EXACT else (owners[~exact], fit[~exact])
        if tier is Tier.WORD:
            return self._words.starting(needle)
        if tier is Tier.KEYWORD:
            return self._keywords.starting(needle)
        if tier is Tier.SUBSTRING:
            return self._inside(needle)
        return self._typos(needle)

    def _inside(self, needle: str) -> tuple[Ints, Floats]:
        positions: list[int] = []
        found = self._blob.find(needle)
        while found >= 0 and len(positions) < _SUBSTRING_SCAN_CAP:
            positions.append(found)
            found = self._blob.find(needle, found + 1)
        terms = np.searchsorted(self._starts, np.array(positions, dtype=np.int64), side="right") - 1
        return self._names.owners[terms], len(needle) / self._names.lengths[terms]

    def _typos(self, needle: str) -> tuple[Ints, Floats]:
        owners: list[int] = []
        quality: list[float] = []
        for text, edits in self._typo_index.find(needle, edits_allowed(needle)):
            mine = self._owners_of[text]
            owners += mine
            quality += [typo_fit(needle, text, edits)] * len(mine)
        return np.array(owners, dtype=np.int64), np.array(quality, dtype=np.float64)

    def _admitted(self, where: CandidateFilter) -> npt.NDArray[np.bool_]:
        """Which candidates the filter admits but for the version (a fresh array: the search marks
        the ones it took)."""
        admitted = np.ones(len(self.candidates), dtype=bool)
        if where.os is not None:
            admitted &= self._os == _OS_CODES[where.os]
        if where.kind is not None:
            admitted &= self._kind == _KIND_CODES[where.kind]
        if where.source is not None:
            admitted &= self._sources.get(where.source, np.zeros(len(self.candidates), dtype=bool))
        return admitted  # the version is checked on a tier's matches only: too dear for every candidate


def _best_per_owner(owners: Ints, quality: Floats) -> tuple[Ints, Floats]:
    """Each owner once, with its best quality."""
    if len(owners) < 2:
        return owners, quality
    order = np.lexsort((-quality, owners))
    owners, quality = owners[order], quality[order]
    first = np.concatenate(([True], owners[1:] != owners[:-1]))
    return owners[first], quality[first]
