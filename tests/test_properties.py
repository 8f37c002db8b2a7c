"""Property-based tests: selector and filter parsing never fail in an unplanned way; backoff stays in bounds."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from jobhouse.api import params
from jobhouse.errors import InvalidRequest, InvalidSelector
from jobhouse.ids import new_id
from jobhouse.retry import Backoff
from jobhouse.search import Searcher
from jobhouse.store.base import Cursor
from jobhouse.store.sqlite import SqliteStore

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8
)
selector_fields = st.sampled_from(["app", "os", "kind", "limit", "version", "source"]) | st.text(max_size=8)
likely_values = (
    st.sampled_from(["linux", "macos", "windows", "gui", "cli", "path", "desktop", "firefox", " ", ""])
    | st.integers(-5, 120)
    | json_values
)


T = TypeVar("T")
E = TypeVar("E", bound=Exception)


def attempt(call: Callable[[], T], expected: type[E]) -> tuple[T | None, E | None]:
    """The value of `call()`, or the `expected` exception it raised (any other propagates)."""
    try:
        return call(), None
    except expected as exc:
        return None, exc


class _Source:
    def __init__(self, source_id: str) -> None:
        self.id = source_id
        self.title = source_id

    def scan(self) -> list[Any]:
        return []


SEARCHER = Searcher(SqliteStore(":memory:"), [_Source("path"), _Source("desktop")])


@given(st.dictionaries(selector_fields, likely_values, max_size=7) | json_values)
def test_a_selector_is_valid_or_a_clear_invalid_selector(data: Any) -> None:
    selector, error = attempt(lambda: SEARCHER.selector(data), InvalidSelector)
    if error is not None:
        assert error.message.startswith("Invalid selector: ")
        if isinstance(data, dict) and "app" not in data:
            assert error.message == "Invalid selector: app is required"
        return
    assert selector is not None
    assert selector.app.strip() == selector.app
    assert selector.app
    assert 1 <= selector.limit <= 100
    assert isinstance(selector.limit, int)
    assert not isinstance(selector.limit, bool)
    assert selector.os in (None, "linux", "macos", "windows")
    assert selector.kind in (None, "gui", "cli")
    assert selector.source in (None, "path", "desktop")
    assert set(data) <= {"app", "os", "kind", "limit", "version", "source"}


def request(query: dict[str, str]) -> Request:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": urlencode(query).encode()}
    return Request(scope)


query_texts = st.text(max_size=12) | st.sampled_from(["0", "1", "50", "500", "501", "-1", "1e3", "done", "120000"])


@given(st.dictionaries(st.sampled_from(["limit", "wait", "timeout_ms", "cursor", "competitorId", "type"]), query_texts))
def test_query_parameters_parse_or_fail_naming_themselves(query: dict[str, str]) -> None:
    r = request(query)
    for name, parse in (
        ("limit", lambda: params.integer(r, "limit", 50, 1, 500)),
        ("timeout_ms", lambda: params.wait_timeout(r)),
        ("cursor", lambda: params.decode_cursor(r)),
        ("competitorId", lambda: params.text(r, "competitorId")),
        ("type", lambda: params.text(r, "type")),
    ):
        value, error = attempt(parse, InvalidRequest)
        if error is not None:
            assert name in error.message or ("wait" in error.message and name == "timeout_ms")
            continue
        if name == "limit":
            assert 1 <= value <= 500
        elif name == "timeout_ms":
            assert 0 <= value <= 120
        elif name in ("competitorId", "type") and value is not None:
            assert 0 < len(value) <= 200
            assert "\x00" not in value


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1)))
def test_cursors_round_trip(moment: datetime) -> None:
    cursor = Cursor(moment.replace(tzinfo=UTC), new_id())
    encoded = params.encode_cursor(cursor)
    assert encoded is not None
    assert params.decode_cursor(request({"cursor": encoded})) == cursor


@given(
    attempt=st.integers(1, 10_000),
    base=st.floats(0, 60),
    cap=st.floats(0, 3600),
    jitter=st.floats(0, 0.99),
    seed=st.integers(),
)
def test_backoff_grows_exponentially_within_its_jitter_and_cap(
    attempt: int, base: float, cap: float, jitter: float, seed: int
) -> None:
    backoff = Backoff(base, cap, jitter)
    delay = backoff.delay(attempt, random.Random(seed))
    raw = min(cap, base * 2.0 ** min(attempt - 1, 62))
    assert 0 <= delay <= cap
    assert raw * (1 - jitter) - 1e-9 <= delay <= min(cap, raw * (1 + jitter)) + 1e-9
    steady = Backoff(base, cap, 0)
    assert steady.delay(attempt) <= steady.delay(attempt + 1)


def test_the_default_backoff_is_documented() -> None:
    backoff = Backoff()
    assert (backoff.base, backoff.cap, backoff.jitter) == (1.0, 300.0, 0.25)
    assert Backoff(jitter=0).delay(1) == 1.0
    assert Backoff(jitter=0).delay(4) == 8.0
    assert Backoff(jitter=0).delay(30) == 300.0
    assert timedelta(seconds=Backoff().delay(1, random.Random(1))).total_seconds() <= 1.25


@pytest.mark.parametrize("value", [38.0, 38])
def test_an_integral_float_is_an_integer(value: float) -> None:
    assert SEARCHER.selector({"app": "x", "limit": value}).limit == 38
