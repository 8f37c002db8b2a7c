"""The in-memory search index over the store's candidates: `rank`'s answers, fast.

`jobhouse.ranking.rank` defines the order by scoring every candidate. `CandidateIndex` gives the
same answers without looking at every candidate. Within a tier, a candidate's score depends only
on the length of its shortest matching term (the tightest match), so each tier is read straight
from an index, bucketed by that length, and cut as soon as the best `limit` are known:

- exact and prefix: the sorted list of app and name;
- word: the sorted list of the words of app and name;
- substring: the intersection of the query's trigrams' postings;
- keyword: the sorted list of keyword tokens;
- fuzzy: candidates sharing enough (padded) trigrams, scored with difflib.

A worse tier never outranks a better one, so a search stops at the first tiers that fill `limit`.
Every process builds its index from the store's candidates (the source of truth, shared by all
nodes) and rebuilds it when the store's catalog version changes, so every node answers alike.
"""

from __future__ import annotations

import bisect
import heapq
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from difflib import SequenceMatcher

from jobhouse.catalog import Candidate, CandidateFilter
from jobhouse.ranking import (
    Match,
    fold,
    fuzzy_share,
    fuzzy_tier,
    keyword_tokens,
    order,
    padded_trigrams,
    trigrams,
    words,
)

#: Tiers read from a sorted term list: (name, lowest score, the score's spread).
_PREFIX = ("prefix", 90.0, 9.0)
_WORD = ("word", 80.0, 9.0)
_SUBSTRING = ("substring", 70.0, 9.0)
_KEYWORD = ("keyword", 60.0, 9.0)


class _SortedTerms:
    """Terms with the candidate each came from, sorted for prefix ranges."""

    def __init__(self, pairs: Iterable[tuple[str, int]]) -> None:
        ordered = sorted(set(pairs))
        self.terms = [term for term, _ in ordered]
        self.ids = array("I", (index for _, index in ordered))
        self.lengths = array("I", (len(term) for term, _ in ordered))

    def shortest(self, prefix: str) -> dict[int, int]:
        """For each candidate with a term starting with `prefix`: its shortest such term's length."""
        start = bisect.bisect_left(self.terms, prefix)
        end = bisect.bisect_left(self.terms, prefix + "\U0010ffff", lo=start)
        best: dict[int, int] = {}
        for index, length in zip(self.ids[start:end], self.lengths[start:end], strict=True):
            if best.get(index, 1 << 30) > length:
                best[index] = length
        return best


class CandidateIndex:
    """Candidates, indexed for `search`; immutable once built."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        self.candidates = list(candidates)
        self._folded = [(fold(c.app), fold(c.name)) for c in self.candidates]
        self._order = [(c.name.casefold(), c.id) for c in self.candidates]
        self._terms = _SortedTerms((t, i) for i, pair in enumerate(self._folded) for t in pair)
        self._words = _SortedTerms((w, i) for i, pair in enumerate(self._folded) for t in pair for w in words(t))
        self._keywords = _SortedTerms(
            (token, i) for i, c in enumerate(self.candidates) for token in keyword_tokens(c.keywords)
        )
        # Padded trigrams of app and name: their plain trigrams find substrings, all of them typos.
        grams: dict[str, array[int]] = {}
        for i, (app, name) in enumerate(self._folded):
            for gram in padded_trigrams(app) | padded_trigrams(name):
                grams.setdefault(gram, array("I")).append(i)
        self._trigrams = grams

    def __len__(self) -> int:
        return len(self.candidates)

    def search(self, query: str, limit: int, where: CandidateFilter | None = None) -> list[Match]:
        """The best `limit` matches for `query` among the candidates `where` admits, best first."""
        needle = fold(query)
        if not needle or limit <= 0:
            return []
        admits = self._admits(where)
        found: list[Match] = []
        seen: set[int] = set()

        def add_tier(shortest: dict[int, int], tier: tuple[str, float, float]) -> bool:
            """Add a tier's best members (by tightest match, then name); True once `limit` is full."""
            buckets: defaultdict[int, list[int]] = defaultdict(list)
            for index, length in shortest.items():
                if index not in seen and admits(index):
                    buckets[length].append(index)
            name, low, spread = tier
            for length in sorted(buckets):
                exact = tier is _PREFIX and length == len(needle)  # a term that starts with it, as long
                score = 100.0 if exact else low + spread * len(needle) / length
                reason = "exact" if exact else name
                for index in sorted(buckets[length], key=self._order.__getitem__):
                    seen.add(index)
                    found.append(Match(self.candidates[index], score, reason))
                    if len(found) >= limit:
                        return True
            return False

        if (
            add_tier(self._terms.shortest(needle), _PREFIX)
            or add_tier(self._words.shortest(needle), _WORD)
            or add_tier(self._inside(needle), _SUBSTRING)
            or add_tier(self._keywords.shortest(needle), _KEYWORD)
        ):
            return found
        matcher = SequenceMatcher(None, "", needle)
        fuzzy = []
        for index in self._fuzzy_candidates(needle):
            if index not in seen and admits(index):
                won = fuzzy_tier(matcher, *self._folded[index])
                if won is not None:
                    fuzzy.append(Match(self.candidates[index], won[1], won[0]))
        return found + heapq.nsmallest(limit - len(found), fuzzy, key=order)

    def _inside(self, needle: str) -> dict[int, int]:
        """Candidates whose app or name holds `needle`: the shortest of those texts' length."""
        grams = trigrams(needle)
        if grams:
            postings = sorted((self._trigrams.get(gram, array("I")) for gram in grams), key=len)
            common = set(postings[0])
            for posting in postings[1:]:
                common.intersection_update(posting)
            options: Iterable[int] = common
        else:  # one or two letters: only a full look finds them inside words
            options = range(len(self.candidates))
        inside: dict[int, int] = {}
        for index in options:
            lengths = [len(text) for text in self._folded[index] if needle in text]
            if lengths:
                inside[index] = min(lengths)
        return inside

    def _fuzzy_candidates(self, needle: str) -> list[int]:
        grams = padded_trigrams(needle)
        shared: Counter[int] = Counter()
        for gram in grams:
            shared.update(self._trigrams.get(gram, ()))
        least = fuzzy_share(grams)
        return [index for index, count in shared.items() if count >= least]

    def _admits(self, where: CandidateFilter | None) -> Callable[[int], bool]:
        if where is None or where == CandidateFilter():
            return lambda index: True
        candidates = self.candidates

        def admits(index: int) -> bool:
            c = candidates[index]
            return (
                (where.os is None or c.os == where.os)
                and (where.kind is None or c.kind == where.kind)
                and (where.source is None or c.source == where.source)
                and (where.version_prefix is None or (c.version or "").startswith(where.version_prefix))
            )

        return admits
