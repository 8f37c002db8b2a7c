"""A kind for the dashboard's tests (``--app tests.ui_kinds:jobs``, beside tests.kinds)."""

from __future__ import annotations

from typing import Any

from jobhouse import JobContext, Registry
from tests import beacon
from tests.kinds import SEED_STEPS

jobs = Registry()


@jobs.kind("stepwise", title="Four held steps", steps=SEED_STEPS, max_attempts=1)
async def stepwise(ctx: JobContext) -> dict[str, Any]:
    """The seed's four steps, each held until the test releases "<id> <step>" (input: {"beacon": addr})."""
    address = ctx.input["beacon"]
    for step in ctx.steps:
        async with ctx.step(step.id):
            await beacon.arrive(address, f"at {step.id} {ctx.id}")
            await beacon.held(address, f"{ctx.id} {step.id}")
    return {"steps": len(ctx.steps)}
