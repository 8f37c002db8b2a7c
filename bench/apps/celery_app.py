"""celery's app: ``celery -A bench.apps.celery_app worker``, Redis broker and Redis result backend."""

from __future__ import annotations

import os

from celery import Celery

app = Celery(
    "bench",
    broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
    backend=os.environ.get("BENCH_REDIS_RESULTS_URL", "redis://127.0.0.1:6379/14"),
)
app.conf.update(worker_hijack_root_logger=True, broker_connection_retry_on_startup=True)


@app.task(name="bench.noop")  # type: ignore[untyped-decorator, unused-ignore]
def noop() -> None:
    return None
