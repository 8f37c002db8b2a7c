"""Job control on kinds: priorities, concurrency limits and unique jobs (``docs/job-control.md``).

Serve it from the repository root with::

    jobhouse serve --app docs.examples.job_control:jobs

``tests/test_job_control.py`` runs these kinds on both stores, and checks that
``docs/job-control.md`` shows only code of this file.
"""

from __future__ import annotations

from typing import Any

from jobhouse import JobContext, Registry

jobs = Registry()


@jobs.kind("send-receipt", priority=5, max_attempts=5)
async def send_receipt(ctx: JobContext) -> dict[str, Any]:
    """A customer waits for it: ahead of the default priority 0."""
    return {"sent_to": ctx.input["email"]}


@jobs.kind("reindex", priority=-5)
async def reindex(ctx: JobContext) -> dict[str, Any]:
    """Background work: whatever else is ready goes first."""
    return {"table": ctx.input.get("table", "all")}


@jobs.kind("call-partner-api", concurrency=2, concurrency_key="partner")
async def call_partner_api(ctx: JobContext) -> dict[str, Any]:
    """At most two calls at a time to each partner, across every worker."""
    return {"partner": ctx.input["partner"]}


@jobs.kind("refresh-report", unique_for=300, unique_key="report_id")
async def refresh_report(ctx: JobContext) -> dict[str, Any]:
    """Five clicks on "refresh" within five minutes make one job."""
    return {"report": ctx.input["report_id"]}
