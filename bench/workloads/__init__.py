"""The workloads: the queue workloads (drain, enqueue, latency) run every system; the others run jobhouse alone."""

from __future__ import annotations

#: The queue workloads, run on every system side by side with a private recorder (`bench.recorder`).
QUEUE_WORKLOADS = ("drain", "enqueue", "latency")
WORKLOADS = (*QUEUE_WORKLOADS, "http", "search", "events", "waiters")
