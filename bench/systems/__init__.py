"""One adapter per system under test, by the name ``--systems`` takes.

Adapters import their peer's client lazily, so a run that skips a system does not need it installed.
"""

from __future__ import annotations

import importlib

from bench.systems.base import System

#: name -> "module:class", in the order systems run.
SYSTEMS: dict[str, str] = {
    "jobhouse-sqlite": "bench.systems.jobhouse_store:JobhouseSqlite",
    "jobhouse-pg": "bench.systems.jobhouse_store:JobhousePostgres",
    "procrastinate": "bench.systems.procrastinate_pg:Procrastinate",
    "saq-pg": "bench.systems.saq_queue:SaqPostgres",
    "huey": "bench.systems.huey_redis:Huey",
    "taskiq": "bench.systems.taskiq_redis:Taskiq",
    "saq-redis": "bench.systems.saq_queue:SaqRedis",
    "celery": "bench.systems.celery_redis:CeleryRedis",
    "rq": "bench.systems.rq_redis:Rq",
    "arq": "bench.systems.arq_redis:Arq",
}


def load(name: str) -> type[System]:
    module, _, attribute = SYSTEMS[name].partition(":")
    cls: type[System] = getattr(importlib.import_module(module), attribute)
    return cls
