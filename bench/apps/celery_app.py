"""celery's app: ``celery -A bench.apps.celery_app worker``, Redis broker, results ignored (its documented advice)."""

from __future__ import annotations

import os

from celery import Celery

from bench.recorder import record as _record

app = Celery("bench", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=True, broker_connection_retry_on_startup=True)


@app.task(name="bench.record")  # type: ignore[untyped-decorator, unused-ignore]
def record(t: float) -> None:
    _record(t)
