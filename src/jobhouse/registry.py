"""Job kinds: what operators register, and what workers run.

::

    jobs = Registry()

    @jobs.kind("collect", title="Analyzing Competitor",
               steps=[("collect", "Collecting Intel"), ("ingest", "Processing Intel")],
               timeout=600, max_attempts=3)
    async def collect(ctx: JobContext) -> dict[str, str]:
        async with ctx.step("collect"):
            ...
        return {"battlecard": "..."}

A handler takes a `JobContext` and returns the job's JSON result. Async handlers run on the
worker's event loop; plain functions run in a thread. A registry only describes kinds: jobs are
made and enqueued by a `jobhouse.queue.Queue` built over a store and a registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from jobhouse.errors import ConfigurationError, UnknownKind
from jobhouse.job import Step
from jobhouse.periodic import check_periodic
from jobhouse.validation import validate

if TYPE_CHECKING:
    from jobhouse.context import JobContext

Handler = Callable[["JobContext"], Any]
H = TypeVar("H", bound=Handler)
#: Checks and normalizes a job's input at creation; raises `InvalidRequest` on bad input.
InputCheck = Callable[[Mapping[str, Any]], Mapping[str, Any]]
#: Steps that depend on a job's input, as ``(id, display name)`` pairs.
StepPlan = Callable[[Mapping[str, Any]], Sequence[tuple[str, str]]]

#: Picks, from a job's (validated) input, what it shares a concurrency limit or a uniqueness key with.
KeyOf = Callable[[Mapping[str, Any]], Any]

#: Attempts a job gets unless its kind says otherwise.
DEFAULT_MAX_ATTEMPTS = 3
#: Job priorities: higher runs first; jobs get 0 unless their kind or their creator says otherwise.
PRIORITY_MIN, PRIORITY_MAX = -10, 10
_KIND_NAME_MAX = 100


@dataclass(frozen=True, slots=True)
class Kind:
    """A registered kind of job."""

    name: str
    handler: Handler
    title: str
    steps: tuple[Step, ...] | StepPlan = ()
    timeout: float | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    result_type: str = ""
    check_input: InputCheck | None = None
    #: Show API clients the traceback of a failed attempt (and the handler's message even with
    #: `redact_errors` on): for kinds whose errors hold nothing secret.
    expose_traceback: bool = False
    #: The priority of this kind's jobs unless their creator gives one (higher runs first).
    priority: int = 0
    #: At most this many of this kind's jobs run at once across every worker (per value of
    #: `concurrency_key`, when it is given); None: no limit.
    concurrency: int | None = None
    concurrency_key: KeyOf | None = None
    #: A job created within this many seconds of an earlier one with the same `unique_key` (in the
    #: same workspace) is that earlier job, not a new one; None: every create makes a job.
    unique_for: float | None = None
    unique_key: KeyOf | None = None
    #: Periodic kinds: a job every `every` seconds, or at each time of the `cron` expression, in
    #: `periodic_workspace` with `periodic_input` (see `jobhouse.periodic`).
    every: float | None = None
    cron: str | None = None
    periodic_workspace: str = "default"
    periodic_input: Mapping[str, Any] = field(default_factory=dict)
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.handler))
        if not self.result_type:
            object.__setattr__(self, "result_type", self.name)

    def steps_for(self, input: Mapping[str, Any]) -> tuple[Step, ...]:
        """The steps of a job with this (validated) input."""
        if callable(self.steps):
            return tuple(Step(step_id, name) for step_id, name in self.steps(input))
        return self.steps


class Registry:
    """A set of job kinds, by name."""

    def __init__(self, kinds: Iterable[Kind] = ()) -> None:
        self._kinds: dict[str, Kind] = {}
        for kind in kinds:
            self.add(kind)

    def kind(
        self,
        name: str,
        *,
        title: str | None = None,
        steps: Sequence[tuple[str, str]] | StepPlan = (),
        timeout: float | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        result_type: str | None = None,
        input: type[BaseModel] | InputCheck | None = None,
        expose_traceback: bool = False,
        priority: int = 0,
        concurrency: int | None = None,
        concurrency_key: str | KeyOf | None = None,
        unique_for: float | None = None,
        unique_key: str | Sequence[str] | KeyOf | None = None,
        every: float | str | None = None,
        cron: str | None = None,
        periodic_workspace: str = "default",
        periodic_input: Mapping[str, Any] | None = None,
    ) -> Callable[[H], H]:
        """Register the decorated function as the handler of kind `name`.

        `steps` are ``(id, display name)`` pairs, in order (or a function of the job's input
        that returns them). `timeout` (seconds) bounds one
        attempt; `max_attempts` counts the first run. `input` is an optional pydantic model (or
        a function) that job input must satisfy at creation: wrong input is a 400 and no job is
        made; the handler sees the validated, normalized input. `expose_traceback` shows API clients
        the traceback of each failed attempt, and the handler's own message even when the server
        redacts error messages (`redact_errors`); by default only operators see tracebacks.

        Job control (``docs/job-control.md``): `priority` (-10..10, higher first) is the default of
        this kind's jobs. `concurrency` caps how many of them run at once across all workers; with
        `concurrency_key` (an input field's name, or a function of the input) the cap holds per
        key. `unique_for` (seconds) makes a create return the job an earlier create made within
        that window if both have the same `unique_key` (input field names, or a function of the
        input; by default the whole input). `every` (seconds, or ``"30s"``, ``"5m"``, ``"2h"``,
        ``"1d"``) or `cron` (a five-field cron expression, UTC) makes the kind periodic: one job per
        period in `periodic_workspace`, with `periodic_input`, however many processes run.
        """
        check: InputCheck | None = _model_check(input, name) if isinstance(input, type) else input

        def register(handler: H) -> H:
            self.add(
                Kind(
                    name=name,
                    handler=handler,
                    title=title or name.replace("-", " ").replace("_", " ").capitalize(),
                    steps=steps if callable(steps) else tuple(Step(i, n) for i, n in steps),
                    timeout=timeout,
                    max_attempts=max_attempts,
                    result_type=result_type or name,
                    check_input=check,
                    expose_traceback=expose_traceback,
                    priority=priority,
                    concurrency=concurrency,
                    concurrency_key=_key_of(concurrency_key),
                    unique_for=unique_for,
                    unique_key=_key_of(unique_key),
                    every=parse_every(every) if every is not None else None,
                    cron=cron,
                    periodic_workspace=periodic_workspace,
                    periodic_input=dict(periodic_input or {}),
                )
            )
            return handler

        return register

    def add(self, kind: Kind) -> None:
        """Register a `Kind` built by hand (the decorator is the usual way)."""
        if not kind.name or len(kind.name) > _KIND_NAME_MAX:
            raise ConfigurationError(f"kind names are 1-{_KIND_NAME_MAX} characters: {kind.name!r}")
        if kind.name in self._kinds:
            raise ConfigurationError(f"kind {kind.name!r} is registered twice")
        if kind.max_attempts < 1:
            raise ConfigurationError(f"kind {kind.name!r}: max_attempts must be at least 1")
        if kind.timeout is not None and kind.timeout <= 0:
            raise ConfigurationError(f"kind {kind.name!r}: timeout must be positive")
        if not callable(kind.steps) and len({s.id for s in kind.steps}) != len(kind.steps):
            raise ConfigurationError(f"kind {kind.name!r}: step ids must be unique")
        if not PRIORITY_MIN <= kind.priority <= PRIORITY_MAX:
            raise ConfigurationError(f"kind {kind.name!r}: priority must be {PRIORITY_MIN}..{PRIORITY_MAX}")
        if kind.concurrency is not None and kind.concurrency < 1:
            raise ConfigurationError(f"kind {kind.name!r}: concurrency must be at least 1")
        if kind.concurrency_key is not None and kind.concurrency is None:
            raise ConfigurationError(f"kind {kind.name!r}: concurrency_key needs a concurrency limit")
        if kind.unique_for is not None and kind.unique_for <= 0:
            raise ConfigurationError(f"kind {kind.name!r}: unique_for must be positive")
        if kind.unique_key is not None and kind.unique_for is None:
            raise ConfigurationError(f"kind {kind.name!r}: unique_key needs a unique_for window")
        if kind.every is not None and kind.cron is not None:
            raise ConfigurationError(f"kind {kind.name!r}: give every or cron, not both")
        if kind.every is not None and kind.every < 1:
            raise ConfigurationError(f"kind {kind.name!r}: every must be at least one second")
        check_periodic(kind)
        self._kinds[kind.name] = kind

    def merged(self, other: Registry) -> Registry:
        """A registry with the kinds of both; a name in both is an error."""
        return Registry([*self, *other])

    def __getitem__(self, name: str) -> Kind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownKind(f"Unknown job type: {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)

    def names(self) -> list[str]:
        return sorted(self._kinds)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(every: float | str) -> float:
    """Seconds from a number of seconds or a duration such as ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``."""
    if isinstance(every, int | float) and not isinstance(every, bool):
        return float(every)
    text = str(every).strip().lower()
    number, unit = text[:-1], text[-1:]
    try:
        if unit in _UNITS and number:
            return float(number) * _UNITS[unit]
        return float(text)
    except ValueError:
        raise ConfigurationError(f"every: {every!r} is not a duration such as 30s, 5m, 2h or 1d") from None


def _key_of(spec: str | Sequence[str] | KeyOf | None) -> KeyOf | None:
    """A key function from an input field's name, several names, or a function of the input."""
    if spec is None or callable(spec):
        return spec
    names = (spec,) if isinstance(spec, str) else tuple(spec)
    if len(names) == 1:
        (name,) = names
        return lambda data: data.get(name)
    return lambda data: [data.get(name) for name in names]


def _model_check(model: type[BaseModel], kind: str) -> InputCheck:
    def check(data: Mapping[str, Any]) -> Mapping[str, Any]:
        return validate(model, data, f"Invalid input for {kind}").model_dump(mode="json")

    return check
