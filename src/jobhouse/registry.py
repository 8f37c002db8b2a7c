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
from jobhouse.validation import validate

if TYPE_CHECKING:
    from jobhouse.context import JobContext

Handler = Callable[["JobContext"], Any]
H = TypeVar("H", bound=Handler)
#: Checks and normalizes a job's input at creation; raises `InvalidRequest` on bad input.
InputCheck = Callable[[Mapping[str, Any]], Mapping[str, Any]]
#: Steps that depend on a job's input, as ``(id, display name)`` pairs.
StepPlan = Callable[[Mapping[str, Any]], Sequence[tuple[str, str]]]

#: Attempts a job gets unless its kind says otherwise.
DEFAULT_MAX_ATTEMPTS = 3
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
    ) -> Callable[[H], H]:
        """Register the decorated function as the handler of kind `name`.

        `steps` are ``(id, display name)`` pairs, in order (or a function of the job's input
        that returns them). `timeout` (seconds) bounds one
        attempt; `max_attempts` counts the first run. `input` is an optional pydantic model (or
        a function) that job input must satisfy at creation: wrong input is a 400 and no job is
        made; the handler sees the validated, normalized input. `expose_traceback` shows API clients
        the traceback of each failed attempt, and the handler's own message even when the server
        redacts error messages (`redact_errors`); by default only operators see tracebacks.
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


def _model_check(model: type[BaseModel], kind: str) -> InputCheck:
    def check(data: Mapping[str, Any]) -> Mapping[str, Any]:
        return validate(model, data, f"Invalid input for {kind}").model_dump(mode="json")

    return check
