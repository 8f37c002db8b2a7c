"""Kinds for the schemathesis server: quick, harmless whatever input they are given."""

from __future__ import annotations

from typing import Any

from jobhouse import JobContext, Registry

jobs = Registry()


@jobs.kind("echo", title="Echo", steps=[("echo", "Echoing")])
async def echo(ctx: JobContext) -> dict[str, Any]:
    async with ctx.step("echo"):
        return {"input": dict(ctx.input)}
