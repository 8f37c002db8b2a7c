"""Relevance judgements made from a machine's own facts, and how a search scores on them.

The queries are what a person on that machine would type, each with the one right answer:

- ``command``: every program on ``PATH`` that a Debian package installed, by its name;
- ``typo``: the same names (5 letters or more) with two neighbouring letters swapped;
- ``desktop``: every desktop entry, by its ``Name``;
- ``gui``: every graphical program apt offers and nothing installed, by package name, ``kind: gui``;
- ``seed``: the seed document's example, ``firefox`` for ``linux``/``gui``, whose right answer is
  the ``firefox-esr`` package where apt has it and nothing called firefox is installed.

The facts come from the sources' own entries (what `jobhouse.sources` read), not from the merged
candidates being judged. `tests/test_relevance.py` judges a machine the test writes;
``scripts/bench --only search`` judges the machine it runs on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobhouse.catalog import AppKind, Entry
from jobhouse.merge import canonical

Found = Sequence[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Query:
    category: str
    selector: dict[str, Any]
    field: str  # the candidate field that names the right answer
    want: str

    def rank_of(self, found: Found) -> int | None:
        """Where the right answer is in `found` (1 is first), or None."""
        return next(
            (n for n, c in enumerate(found, 1) if str(c.get(self.field)).casefold() == self.want.casefold()), None
        )


@dataclass
class Judgement:
    """How a search did on a set of queries."""

    ranks: list[tuple[Query, int | None]] = field(default_factory=list)

    @property
    def precision_at_1(self) -> float:
        return sum(rank == 1 for _, rank in self.ranks) / max(len(self.ranks), 1)

    @property
    def recall_at_3(self) -> float:
        return sum(rank is not None and rank <= 3 for _, rank in self.ranks) / max(len(self.ranks), 1)

    def by_category(self) -> dict[str, tuple[int, float, float]]:
        """For each category: queries, precision@1, recall@3."""
        out = {}
        for category in sorted({q.category for q, _ in self.ranks}):
            ranks = [r for q, r in self.ranks if q.category == category]
            out[category] = (
                len(ranks),
                sum(r == 1 for r in ranks) / len(ranks),
                sum(r is not None and r <= 3 for r in ranks) / len(ranks),
            )
        return out

    def misses(self) -> list[tuple[Query, int | None]]:
        return [(q, r) for q, r in self.ranks if r != 1]


def queries(entries: Iterable[Entry]) -> list[Query]:
    """The judgement set of a machine whose sources yielded `entries`."""
    entries = list(entries)
    by_source: dict[str, list[Entry]] = {}
    for entry in entries:
        by_source.setdefault(entry.source, []).append(entry)
    installed_files = {f for e in by_source.get("dpkg", ()) for f in _canonical(e.files)}
    installed_packages = {e.app for e in by_source.get("dpkg", ())}
    known = {e.app.casefold() for e in entries} | {e.name.casefold() for e in entries}
    made = []
    for entry in by_source.get("path", ()):
        if set(_canonical(entry.files)) & installed_files:
            made.append(Query("command", {"app": entry.app}, "app", entry.app))
            typo = swapped(entry.app)
            if typo is not None and typo.casefold() not in known:
                made.append(Query("typo", {"app": typo}, "app", entry.app))
    names = [e.name for e in by_source.get("desktop", ())]
    for name in names:
        if names.count(name) == 1:
            made.append(Query("desktop", {"app": name}, "name", name))
    for entry in by_source.get("apt", ()):
        if entry.kind is AppKind.GUI and entry.app not in installed_packages:
            made.append(Query("gui", {"app": entry.app, "kind": "gui"}, "app", entry.app))
    here = {e.app.casefold() for source in ("path", "desktop") for e in by_source.get(source, ())}
    if any(e.app == "firefox-esr" for e in by_source.get("apt", ())) and "firefox" not in here:
        made.append(Query("seed", {"app": "firefox", "os": "linux", "kind": "gui"}, "app", "firefox-esr"))
    return made


def swapped(name: str) -> str | None:
    """`name` with two neighbouring inner letters swapped (which pair depends on the name only)."""
    if len(name) < 5 or not name.isalpha():
        return None
    start = 1 + int(hashlib.sha256(name.encode()).hexdigest(), 16) % (len(name) - 3)
    typo = name[:start] + name[start + 1] + name[start] + name[start + 2 :]
    return typo if typo != name else None


def judge(made: Sequence[Query], search: Callable[[dict[str, Any]], Found]) -> Judgement:
    """Run each query through `search` (a selector in, candidates out) and note where the answer was."""
    judgement = Judgement()
    for query in made:
        judgement.ranks.append((query, query.rank_of(search({**query.selector, "limit": 10}))))
    return judgement


def _canonical(files: Iterable[str]) -> list[str]:
    return [canonical(f) for f in files]
