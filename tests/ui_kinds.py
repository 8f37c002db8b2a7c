"""Kinds for the dashboard's tests (``--app tests.ui_kinds:jobs``, beside tests.kinds)."""

from __future__ import annotations

import asyncio
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


@jobs.kind("ticker", title="Four quick steps", steps=SEED_STEPS, max_attempts=1)
async def ticker(ctx: JobContext) -> dict[str, Any]:
    """The seed's four steps, each lasting input["pause"] seconds (0.2 by default), with progress."""
    pause = float(ctx.input.get("pause", 0.2))
    for step in ctx.steps:
        async with ctx.step(step.id):
            await asyncio.sleep(pause)
    return {"steps": len(ctx.steps)}


@jobs.kind("solo", title="One at a time", steps=[("hold", "Holding")], max_attempts=1, concurrency=1)
async def solo(ctx: JobContext) -> dict[str, Any]:
    """Runs one at a time (the others wait queued), each held until the test releases "<id>"."""
    address = ctx.input["beacon"]
    async with ctx.step("hold"):
        await beacon.arrive(address, f"started {ctx.id}")
        await beacon.held(address, ctx.id)
    return {}
