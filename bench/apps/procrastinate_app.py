"""procrastinate's app: ``procrastinate --app=bench.apps.procrastinate_app.app worker``."""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

from bench.recorder import arecord


def make_app(dsn: str, schema: str) -> App:
    connector = PsycopgConnector(conninfo=dsn, kwargs={"options": f"-c search_path={schema}"})
    return App(connector=connector)


app = make_app(os.environ.get("BENCH_PG_DSN", ""), os.environ.get("BENCH_PG_SCHEMA", "public"))


@app.task(name="record")
async def record(t: float) -> None:
    await arecord(t)
