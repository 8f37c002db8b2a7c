"""Periodic kinds: one job every five minutes, and one each weekday morning (``docs/periodic.md``).

Serve it from the repository root with::

    jobhouse serve --app docs.examples.periodic:jobs

``tests/test_periodic.py`` runs its kinds' schedule on a real store, and checks that
``docs/periodic.md`` shows this file as it is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from jobhouse import JobContext, Registry

jobs = Registry()


@jobs.kind("expire-sessions", every="5m", max_attempts=1)
async def expire_sessions(ctx: JobContext) -> dict[str, Any]:
    """Every five minutes, on the clock (:00, :05, ...), in the workspace ``default``."""
    return {"period": ctx.metadata["period"], "expired": 0}


class DigestInput(BaseModel):
    recipients: list[str]
    days: int = 1


@jobs.kind(
    "weekday-digest",
    cron="0 7 * * mon-fri",
    periodic_workspace="reports",
    periodic_input={"recipients": ["ops@example.com"]},
    input=DigestInput,
    timeout=600,
)
def weekday_digest(ctx: JobContext) -> dict[str, Any]:
    """At 07:00 UTC from Monday to Friday, in the workspace ``reports``."""
    return {"sent_to": ctx.input["recipients"], "covering_days": ctx.input["days"], "period": ctx.metadata["period"]}
