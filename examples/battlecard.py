"""Example kinds: a competitor analysis in four named steps.

Run it with ``jobhouse serve --app examples.battlecard:jobs`` (``scripts/serve`` does).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobhouse import JobContext, Registry

jobs = Registry()


class CollectInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    competitor: str = Field(default="Competitor Inc", min_length=1, max_length=200)
    seconds_per_step: float = Field(default=1.0, ge=0, le=60)


@jobs.kind(
    "collect",
    title="Analyzing Competitor",
    steps=[
        ("collect", "Collecting Intel"),
        ("ingest", "Processing Intel"),
        ("build-matrix", "Building Competitor Matrix"),
        ("build-battlecard", "Generating Battle Card"),
    ],
    timeout=600,
    max_attempts=3,
    result_type="battlecard",
    input=CollectInput,
)
async def collect(ctx: JobContext) -> dict[str, Any]:
    pause = float(ctx.input["seconds_per_step"])
    competitor = ctx.input["competitor"]
    for step in ctx.steps:
        async with ctx.step(step.id):
            await asyncio.sleep(pause)
    return {"competitor": competitor, "battlecard": f"How we win against {competitor}: ..."}
