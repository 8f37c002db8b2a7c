"""Kinds the test servers run (``--app tests.kinds:jobs``)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

from jobhouse import JobContext, Registry
from tests import beacon

jobs = Registry()

SEED_STEPS = [
    ("collect", "Collecting Intel"),
    ("ingest", "Processing Intel"),
    ("build-matrix", "Building Competitor Matrix"),
    ("build-battlecard", "Generating Battle Card"),
]


@jobs.kind("collect", title="Analyzing Competitor", steps=SEED_STEPS, max_attempts=1, result_type="battlecard")
async def collect(ctx: JobContext) -> dict[str, Any]:
    """Runs the seed's four steps; with input {"beacon": addr, "hold_at": step} it waits there."""
    address = ctx.input.get("beacon")
    for step in ctx.steps:
        async with ctx.step(step.id):
            if address and ctx.input.get("hold_at") == step.id:
                await beacon.arrive(address, f"at {step.id} {ctx.id}")
                await beacon.held(address, ctx.id)
    return {"battlecard": f"for {ctx.subject}", "metadata_seen": dict(ctx.metadata)}


@jobs.kind("hold", title="Held job", steps=[("hold", "Holding")], max_attempts=3)
async def hold(ctx: JobContext) -> dict[str, Any]:
    """Says "started", waits for the test to release it, then says "after".

    Each message names the job, the attempt and the process: "started <id> attempt <n> pid <pid>".
    """
    address = ctx.input["beacon"]

    async def say(what: str) -> None:
        await beacon.arrive(address, f"{what} {ctx.id} attempt {ctx.attempt} pid {os.getpid()}")

    async with ctx.step("hold"):
        await say("started")
        try:
            await beacon.held(address, ctx.id)
        except asyncio.CancelledError:
            await say("interrupted")
            raise
        await say("after")
    return {"released": True, "attempt": ctx.attempt, "pid": os.getpid()}


@jobs.kind("suicide", title="Kills its own process", max_attempts=3)
def suicide(ctx: JobContext) -> None:
    """Every attempt kills the worker process running it, at once."""
    os.kill(os.getpid(), signal.SIGKILL)


@jobs.kind("hold-sync", title="Held job in a thread", steps=[("hold", "Holding")], max_attempts=1)
def hold_sync(ctx: JobContext) -> dict[str, Any]:
    """A plain function: runs until it sees ctx.cancelled."""
    address = ctx.input["beacon"]
    with ctx.step("hold"):
        beacon.arrive_sync(address, f"started {ctx.id}")
        deadline = time.monotonic() + 30
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        beacon.arrive_sync(address, f"{'cancelled' if ctx.cancelled else 'timed out'} {ctx.id}")
    return {"cancelled": ctx.cancelled}


@jobs.kind("record", title="Record the run", max_attempts=25)
def record(ctx: JobContext) -> dict[str, Any]:
    """Writes its runs to a side table (the file input["log"]): one line when it starts, one when it
    ends, each "<job id> <attempt> <pid> <start|end> <time>". Sleeps input["seconds"] in between."""
    side_table(ctx, "start")
    time.sleep(float(ctx.input.get("seconds", 0)))
    side_table(ctx, "end")
    return {"pid": os.getpid()}


def side_table(ctx: JobContext, event: str) -> None:
    with open(ctx.input["log"], "a") as log:  # one short append: whole lines, even across processes
        log.write(f"{ctx.id} {ctx.attempt} {os.getpid()} {event} {time.time():.6f}\n")


@jobs.kind("echo", title="Echo", max_attempts=1)
async def echo(ctx: JobContext) -> dict[str, Any]:
    return {"input": dict(ctx.input)}


@jobs.kind("boom", title="Always fails", steps=[("explode", "Exploding")], max_attempts=1)
async def boom(ctx: JobContext) -> None:
    async with ctx.step("explode"):
        raise ValueError("boom: the handler failed")


# -- logs and error messages (tests/test_logs.py) -----------------------------------------------------


@jobs.kind("leak", title="Fails with a secret in its message", max_attempts=2)
def leak(ctx: JobContext) -> None:
    """A plain function (so it runs in a thread) that logs a line of its own, then fails with its
    input's password in the message, on every attempt."""
    logging.getLogger("tests.kinds").warning("leak: trying to log in")
    raise PermissionError(f"login refused for password={ctx.input.get('password', 'hunter2')}")


@jobs.kind("boom-shown", title="Fails, and shows why", max_attempts=1, expose_traceback=True)
async def boom_shown(ctx: JobContext) -> None:
    raise ValueError("boom: shown to clients")


@jobs.kind("paced", title="Paced by group", max_attempts=1, concurrency=2, concurrency_key="group")
async def paced(ctx: JobContext) -> dict[str, Any]:
    """Runs at most two at a time per `group`; says when it ran (wall clock, for overlaps)."""
    start = time.time()
    await asyncio.sleep(float(ctx.input.get("seconds", 0.2)))
    return {"start": start, "end": time.time()}


@jobs.kind("once", title="Once per key a minute", max_attempts=1, unique_for=60, unique_key="key")
async def once(ctx: JobContext) -> dict[str, Any]:
    return {"key": ctx.input.get("key")}


@jobs.kind("stamp", title="Says when it started", max_attempts=1)
async def stamp(ctx: JobContext) -> dict[str, Any]:
    """Its start on the server's clock, and a pause (so a backlog of them lasts)."""
    started = time.time()
    await asyncio.sleep(float(ctx.input.get("seconds", 0)))
    return {"started": started}


# -- retry (tests/test_retry_delete.py) ----------------------------------------------------------------


@jobs.kind("gate", title="Fails until its gate is open", steps=[("pass", "Passing the gate")], max_attempts=1)
def gate(ctx: JobContext) -> dict[str, Any]:
    """Fails while the file input["gate"] does not exist; completes once the test has made it."""
    with ctx.step("pass"):
        if not os.path.exists(ctx.input["gate"]):
            raise FileNotFoundError(f"the gate is closed on attempt {ctx.attempt}")
    return {"passed_on": ctx.attempt}
