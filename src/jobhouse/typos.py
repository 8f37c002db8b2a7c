"""Finding the names a typo away from a query, among a hundred thousand, in about a millisecond.

Comparing the query with every name is too slow at that size (tens of milliseconds even with
rapidfuzz), so a cheap filter goes first. Every name is cut into its bigrams, with its start and
end marked (``^f fi ir re ef fo ox x$`` for firefox). An edit can change at most three of a
query's bigrams (a swap of two letters changes three; a substitution, insertion or deletion at
most two), so a name within `k` edits shares at least ``len(bigrams) - 3k`` of them, and its
length is within `k` of the query's. Only the names that pass both are compared, with rapidfuzz's
restricted Damerau-Levenshtein distance (`OSA`).

Everything is built with numpy, in one pass per name length: no Python loop per name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import OSA

_START, _END = "\x02", "\x03"


def _bigrams(texts: Sequence[str], length: int) -> npt.NDArray[np.int64]:
    """The marked bigrams of texts that all have `length` characters, one row per text."""
    marked = "".join(f"{_START}{text}{_END}" for text in texts).encode("utf-32-le")
    codes = np.frombuffer(marked, dtype=np.uint32).reshape(len(texts), length + 2).astype(np.int64)
    return (codes[:, :-1] << 21) | codes[:, 1:]


class TypoIndex:
    """Distinct texts, indexed to find those a few edits away from a query."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.lengths = np.array([len(text) for text in self.texts], dtype=np.int64)
        by_length: defaultdict[int, list[int]] = defaultdict(list)
        for number, text in enumerate(self.texts):
            by_length[len(text)].append(number)
        grams, owners = [], []
        for length, numbers in by_length.items():
            found = _bigrams([self.texts[n] for n in numbers], length)
            grams.append(found.ravel())
            owners.append(np.repeat(np.array(numbers, dtype=np.int64), length + 1))
        all_grams = np.concatenate(grams) if grams else np.empty(0, dtype=np.int64)
        order = np.argsort(all_grams, kind="stable")
        sorted_grams = all_grams[order]
        self._owners = np.concatenate(owners)[order] if owners else np.empty(0, dtype=np.int64)
        self._grams, self._starts = np.unique(sorted_grams, return_index=True)
        self._ends = np.append(self._starts[1:], len(sorted_grams))

    def find(self, needle: str, allowed: int) -> list[tuple[str, int]]:
        """The texts within `allowed` edits of `needle`, with their number of edits."""
        if allowed <= 0 or not self.texts:
            return []
        wanted = np.unique(_bigrams([needle], len(needle)))
        near = np.abs(self.lengths - len(needle)) <= allowed
        least = len(wanted) - 3 * allowed
        if least > 0:
            at = np.searchsorted(self._grams, wanted)
            at = at[at < len(self._grams)]
            at = at[np.isin(self._grams[at], wanted)]
            postings = [self._owners[self._starts[i] : self._ends[i]] for i in at.tolist()]
            shared = np.bincount(np.concatenate(postings), minlength=len(self.texts)) if postings else 0
            near &= shared >= least
        close = [self.texts[n] for n in np.flatnonzero(near).tolist()]
        found = process.extract(needle, close, scorer=OSA.distance, score_cutoff=allowed, limit=None)
        return [(text, int(edits)) for text, edits, _ in found]
