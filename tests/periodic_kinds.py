"""The periodic kind the periodic tests' servers run (``--app tests.periodic_kinds:jobs``).

Kept apart from `tests.kinds`: every server that loaded it would make a job a second."""

from __future__ import annotations

from typing import Any

from jobhouse import JobContext, Registry

jobs = Registry()

#: The workspace the `tick` jobs are made in.
WORKSPACE = "periodic"


@jobs.kind("tick", every="1s", periodic_workspace=WORKSPACE, periodic_input={"note": "every second"}, max_attempts=1)
async def tick(ctx: JobContext) -> dict[str, Any]:
    """Returns the period it ran for and its input, as the service gave them."""
    return {"period": ctx.metadata["period"], "input": dict(ctx.input)}
