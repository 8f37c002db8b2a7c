"""Metrics for Prometheus: what this process counts and times, and what the store holds.

Each `Runtime` owns one `Metrics`, with a `CollectorRegistry` of its own (never prometheus-client's
global one), so several runtimes can live in one process. It records in three places:

- `jobhouse.queue.Queue`, where jobs change: jobs created, ended (completed, failed, cancelled),
  retried and lost (taken back by the rescuer), and the time of each store call it makes;
- `jobhouse.worker.Worker`, where kinds and timings are known: attempts started, how long each job
  waited for its handler and how long the handler ran;
- the HTTP layer (`jobhouse.api.dispatch`): each request's latency by route template.

Each record is a counter increment or a histogram observation on a label child cached by its
labels, a few microseconds at most: nothing reads the store on the way. What the store holds
(queued and running jobs, and the age of the oldest queued one, by kind and workspace) is read at
scrape time, in one grouped query of the partial indexes of those jobs (`Store.active_counts`), so
it is exact and cluster-wide.

Multi-process mode: when ``PROMETHEUS_MULTIPROC_DIR`` names a directory in the environment of a
process before it starts, prometheus-client keeps that process's counters and histograms in files
there, and a scrape of any jobhouse process sharing the directory adds up the files of them all
(``jobhouse serve --no-workers`` plus ``jobhouse worker`` processes on one machine, say). See
``docs/metrics.md``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from datetime import datetime
from time import perf_counter
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from jobhouse import __version__
from jobhouse.errors import ConfigurationError, StoreUnavailable
from jobhouse.job import JobStatus, Verdict
from jobhouse.store.base import JobCount

#: The media type of a scrape's answer (Prometheus' text format 0.0.4).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: Waiting for a worker and running a handler: from a few milliseconds to an hour and more.
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
#: An HTTP answer: sub-millisecond for a status read, up to `long_poll_max` for a long-poll.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
#: One store call: a read on the loop's thread, a group commit, a connection that does not come.
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

#: The methods a request is labelled with as they are; any other is ``other`` (a label per made-up
#: method would let a client create series at will).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request no route answered (no such path, or refused before routing).
OTHER_ROUTE = "other"

_ENDED = {Verdict.COMPLETED: JobStatus.COMPLETED.value, Verdict.FAILED: JobStatus.FAILED.value}
_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx")

M = TypeVar("M", bound=MetricWrapperBase)
T = TypeVar("T")


def multiprocess_dir() -> str | None:
    """The directory prometheus-client keeps this process's figures in, in multi-process mode (it
    decides when it is imported, from ``PROMETHEUS_MULTIPROC_DIR``); None in the usual mode."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Children(Generic[M]):
    """A labelled metric's children by their label values, cached: the lookup behind
    ``metric.labels(...)`` costs more than the increment itself."""

    __slots__ = ("children", "metric")

    def __init__(self, metric: M) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], M] = {}

    def __call__(self, *labels: str) -> M:
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = self.metric.labels(*labels)
        return child


class Metrics:
    """The counters and histograms of one process; `enabled=False` records nothing."""

    def __init__(self, *, enabled: bool = True, store: str = "") -> None:
        self.enabled = enabled
        #: The store backend the build info names ("sqlite", "postgres").
        self.store = store
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir()
        if self.multiprocess_dir is None:  # a process's own figures cannot be added up across processes
            ProcessCollector(registry=self.registry)
        elif enabled and not os.path.isdir(self.multiprocess_dir):  # else the first count would fail
            raise ConfigurationError(f"PROMETHEUS_MULTIPROC_DIR={self.multiprocess_dir} is not a directory")

        def counter(name: str, text: str, *labels: str) -> _Children[Counter]:
            return _Children(Counter(name, text, labels, registry=self.registry))

        def histogram(name: str, text: str, buckets: Sequence[float], *labels: str) -> _Children[Histogram]:
            return _Children(Histogram(name, text, labels, buckets=buckets, registry=self.registry))

        self.jobs_created = counter("jobhouse_jobs_created", "Jobs created (enqueued), by kind.", "kind")
        self.jobs_ended = counter(
            "jobhouse_jobs_ended",
            "Jobs that ended, by kind and status (completed, failed, cancelled).",
            "kind",
            "status",
        )
        self.jobs_retried = counter("jobhouse_jobs_retried", "Failed attempts whose job was queued again.", "kind")
        self.jobs_lost = counter(
            "jobhouse_jobs_lost", "Attempts the rescuer took back from a worker that stopped heartbeating.", "kind"
        )
        self.attempts_started = counter("jobhouse_attempts_started", "Handlers started (one per attempt).", "kind")
        self.wait_seconds = histogram(
            "jobhouse_job_wait_seconds",
            "From when a job was due (created, or its retry's time) until its handler started.",
            JOB_BUCKETS,
            "kind",
        )
        self.run_seconds = histogram(
            "jobhouse_job_run_seconds", "How long each attempt's handler ran.", JOB_BUCKETS, "kind"
        )
        self.store_seconds = histogram(
            "jobhouse_store_seconds", "Round-trip time of store calls, by operation.", STORE_BUCKETS, "operation"
        )
        self.store_errors = counter(
            "jobhouse_store_errors", "Store calls that failed because the store was unavailable.", "operation"
        )
        self.request_seconds = histogram(
            "jobhouse_http_request_duration_seconds",
            "HTTP requests: time until the answer's head, by route template, method and status class.",
            REQUEST_BUCKETS,
            "route",
            "method",
            "status",
        )
        #: Every (kind, workspace) a scrape found queued or running jobs of: their gauges stay, at 0.
        self._queues: set[tuple[str, str]] = set()

    # -- recording ---------------------------------------------------------------------------

    def created(self, kinds: Iterable[str]) -> None:
        if self.enabled:
            for kind in kinds:
                self.jobs_created(kind).inc()

    def cancelled(self, kind: str) -> None:
        if self.enabled:
            self.jobs_ended(kind, JobStatus.CANCELLED.value).inc()

    def finished(self, kind: str, verdict: Verdict) -> None:
        """A worker's outcome was written: the job ended, or (retry) was queued again."""
        if self.enabled:
            if verdict == Verdict.RETRY:
                self.jobs_retried(kind).inc()
            else:
                self.jobs_ended(kind, _ENDED[verdict]).inc()

    def lost(self, kind: str, *, failed: bool) -> None:
        """The rescuer took an attempt back; with no attempts left, the job failed."""
        if self.enabled:
            self.jobs_lost(kind).inc()
            if failed:
                self.jobs_ended(kind, JobStatus.FAILED.value).inc()

    def started(self, kind: str, waited: float) -> None:
        """A handler started, `waited` seconds after its job was due."""
        if self.enabled:
            self.attempts_started(kind).inc()
            self.wait_seconds(kind).observe(max(waited, 0.0))

    def ran(self, kind: str, seconds: float) -> None:
        if self.enabled:
            self.run_seconds(kind).observe(seconds)

    def request(self, route: str | None, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered: `route` is the matched route's template (None: no route)."""
        if self.enabled:
            if method not in METHODS:
                method = "other"
            self.request_seconds(route or OTHER_ROUTE, method, _STATUS_CLASSES[status // 100]).observe(seconds)

    async def timed(self, operation: str, call: Awaitable[T]) -> T:
        """Await a store call, timing it and counting it if the store was unavailable."""
        if not self.enabled:
            return await call
        started = perf_counter()
        try:
            return await call
        except StoreUnavailable:
            self.store_errors(operation).inc()
            raise
        finally:
            self.store_seconds(operation).observe(perf_counter() - started)

    # -- scraping ----------------------------------------------------------------------------

    def exposition(self, counts: Sequence[JobCount] | None, now: datetime, watching: tuple[int, int] = (0, 0)) -> bytes:
        """The scrape: this process's figures (every process's, in multi-process mode), then the
        store's `counts` at `now` (None: the store did not answer), the long-polls and streams this
        process holds, and the build."""
        own: Collector = self.registry
        if self.multiprocess_dir is not None:
            own = MultiProcessCollector(None, self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(_Scrape([own, _Snapshot(counts, now, watching, self.store, self._queues)]))


class _Scrape:
    """Several collectors read as one, without the ``*_created`` samples prometheus-client adds to
    counters and histograms (a second series for each, which Prometheus has no use for here)."""

    def __init__(self, collectors: Sequence[Collector]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            for metric in collector.collect():
                if metric.type in ("counter", "histogram"):
                    metric.samples = [sample for sample in metric.samples if not sample.name.endswith("_created")]
                yield metric


class _Snapshot:
    """The gauges read at scrape time: the store's queued and running jobs, this process's waiters,
    the build."""

    def __init__(
        self,
        counts: Sequence[JobCount] | None,
        now: datetime,
        watching: tuple[int, int],
        store: str,
        seen: set[tuple[str, str]],
    ) -> None:
        self.counts = counts
        self.seen = seen
        self.now = now
        self.watching = watching
        self.store = store

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "jobhouse_store_up",
            "1 if the store answered this scrape's read, else 0.",
            value=int(self.counts is not None),
        )
        if self.counts is not None:
            yield from self._counts(self.counts)
        long_polls, streams = self.watching
        yield GaugeMetricFamily("jobhouse_long_polls", "Long-polls this process holds open now.", value=long_polls)
        yield GaugeMetricFamily("jobhouse_event_streams", "Event streams this process holds open now.", value=streams)
        build = GaugeMetricFamily(
            "jobhouse_build_info",
            "Always 1: this build's version, Python and store.",
            labels=["version", "python", "store"],
        )
        build.add_metric([__version__, platform.python_version(), self.store], 1)
        yield build

    def _counts(self, counts: Sequence[JobCount]) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "jobhouse_queue_depth",
            "Queued jobs (due, or waiting for a retry's time), by kind and workspace.",
            labels=["kind", "workspace"],
        )
        oldest = GaugeMetricFamily(
            "jobhouse_queue_oldest_age_seconds",
            "How long the queued job due the longest has been due, by kind and workspace (0: none is due).",
            labels=["kind", "workspace"],
        )
        running = GaugeMetricFamily(
            "jobhouse_jobs_running", "Running jobs, by kind and workspace.", labels=["kind", "workspace"]
        )
        found: dict[tuple[str, str], dict[JobStatus, JobCount]] = {}
        for count in counts:
            found.setdefault((count.kind, count.workspace), {})[count.status] = count
        self.seen.update(found)
        for kind, workspace in sorted(self.seen):  # a queue seen once stays, at 0 when empty
            statuses = found.get((kind, workspace), {})
            queued, busy = statuses.get(JobStatus.QUEUED), statuses.get(JobStatus.RUNNING)
            due = queued.earliest if queued is not None else None
            depth.add_metric([kind, workspace], queued.count if queued else 0)
            oldest.add_metric([kind, workspace], max((self.now - due).total_seconds(), 0.0) if due else 0.0)
            running.add_metric([kind, workspace], busy.count if busy else 0)
        yield depth
        yield oldest
        yield running
