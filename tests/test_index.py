"""The fast index answers exactly what the reference ranking answers."""

from __future__ import annotations

import random
import string

from hypothesis import given
from hypothesis import strategies as st

from jobhouse.catalog import OS, AppKind, Candidate, CandidateFilter
from jobhouse.index import CandidateIndex
from jobhouse.ranking import Match, rank

PIECES = ["fire", "fox", "firefox", "htop", "code", "vim", "term", "ter", "web", "browser", "gimp", "a", "ab"]
texts = st.lists(
    st.sampled_from(PIECES) | st.text(alphabet="abcefhiortx", min_size=1, max_size=6), min_size=1, max_size=3
)
separators = st.sampled_from([" ", "-", "_", ".", ""])


@st.composite
def candidates(draw: st.DrawFn) -> list[Candidate]:
    made = []
    for number in range(draw(st.integers(0, 40))):
        app = draw(separators).join(draw(texts))
        name = draw(st.sampled_from([app, app.title(), " ".join(draw(texts)).title()]))
        installed = draw(st.booleans())
        made.append(
            Candidate(
                id=f"{number}",
                app=app,
                name=name,
                os=draw(st.sampled_from(list(OS))),
                kind=draw(st.sampled_from(list(AppKind))),
                sources=tuple(draw(st.lists(st.sampled_from(["s", "t"]), min_size=1, max_size=2, unique=True))),
                version=draw(st.sampled_from([None, "1.2", "10.0", "2", "1:2.3-1"])),
                keywords=tuple(draw(st.lists(st.sampled_from(PIECES), max_size=2))),
                aliases=tuple(draw(st.lists(st.sampled_from(PIECES), max_size=1))),
                installed=installed,
                launch=draw(st.sampled_from([None, "/bin/x"])) if installed else None,
                popularity=draw(st.sampled_from([0.0, 0.2, 0.5, 1.0])),
            )
        )
    return made


filters = st.builds(
    CandidateFilter,
    os=st.none() | st.sampled_from(list(OS)),
    kind=st.none() | st.sampled_from(list(AppKind)),
    source=st.none() | st.sampled_from(["s", "t", "u"]),
    version=st.none() | st.sampled_from(["1", "10", "2.", "2.3"]),
)
queries = st.sampled_from(PIECES) | st.text(alphabet="abcefhiortx -", min_size=0, max_size=8)


def summary(matches: list[Match]) -> list[tuple[str, float, str]]:
    return [(m.candidate.id, m.score, m.reason) for m in matches]


@given(candidates(), queries, st.integers(1, 12), filters, st.sampled_from(list(OS)))
def test_the_index_agrees_with_the_reference_ranking(
    items: list[Candidate], query: str, limit: int, where: CandidateFilter, prefer: OS
) -> None:
    index = CandidateIndex(items)
    assert summary(index.search(query, limit, where, prefer)) == summary(rank(items, query, limit, where, prefer))


def test_the_index_agrees_on_a_large_catalog() -> None:
    rng = random.Random(7)
    items = [
        Candidate(
            id=f"g:{n}",
            app=(app := "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10)))),
            name=app.title() + rng.choice(["", " Editor", " Viewer", "-tools"]),
            os=rng.choice(list(OS)),
            kind=rng.choice(list(AppKind)),
            sources=("g",),
            installed=rng.random() < 0.1,
            popularity=rng.choice([0.0, 0.1, 0.3]),
        )
        for n in range(5000)
    ]
    index = CandidateIndex(items)
    for query in ["a", "ab", "fir", "edit", "viewer", "tools", items[17].app, items[99].app[:-1] + "q", "zzzq"]:
        for where in (CandidateFilter(), CandidateFilter(os=OS.LINUX, kind=AppKind.GUI)):
            assert summary(index.search(query, 25, where)) == summary(rank(items, query, 25, where))
