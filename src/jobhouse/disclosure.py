"""What clients are shown of a failure: one rule for API answers, event streams and webhook bodies.

Never a traceback, unless the job's kind opts in (``expose_traceback=True``); with `redact_errors`,
a handler's own message reads ``The job failed (<type>)`` for the kinds that do not opt in, while
jobhouse's own messages (timeouts, lost workers, cancels) stay readable. The store keeps everything
for operators (``jobhouse jobs get ID --traceback``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobhouse.job import Failure

if TYPE_CHECKING:
    from jobhouse.registry import Registry


@dataclass(frozen=True, slots=True)
class Disclosure:
    """The rule one server applies: `redact` (the `redact_errors` setting), the kinds of `registry`
    that opt in to tracebacks, or everything for `operator` (never over HTTP)."""

    redact: bool = False
    registry: Registry | None = None
    operator: bool = False

    def shown(self, failure: Failure, kind: str) -> tuple[str, str | None]:
        """The message, and the traceback (None: not shown), that clients see of `failure` of a `kind` job."""
        registry = self.registry
        if self.operator or (registry is not None and kind in registry and registry[kind].expose_traceback):
            return failure.message, failure.traceback
        if self.redact and failure.from_handler:
            return f"The job failed ({failure.type})", None
        return failure.message, None


#: What a client sees with nothing redacted and no kind opting in.
PLAIN = Disclosure()
#: Everything the store keeps: for operators on the machine that holds it, never over HTTP.
OPERATOR = Disclosure(operator=True)
