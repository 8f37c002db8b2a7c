"""One jobhouse process: its store, kinds, services, and the background work it runs.

`jobhouse serve`, `jobhouse worker` and the tests all build a `Runtime`; nothing here is global,
so several runtimes (on several stores) can live in one process.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Mapping, Sequence

from jobhouse.builtin import SYNC_KIND, builtin_kinds
from jobhouse.clock import Clock
from jobhouse.disclosure import Disclosure
from jobhouse.egress import HostPolicy
from jobhouse.errors import ConfigurationError, SchemaMismatch
from jobhouse.feed import Feed
from jobhouse.hub import Refresher
from jobhouse.keys import create_key
from jobhouse.maintenance import Pruner, Rescuer, Service, run_services
from jobhouse.metrics import Metrics
from jobhouse.periodic import Periodic, is_periodic
from jobhouse.queue import Queue
from jobhouse.registry import Registry
from jobhouse.retry import Backoff
from jobhouse.scanner import Scanner
from jobhouse.search import Searcher
from jobhouse.service import JobService, Rate
from jobhouse.settings import Settings
from jobhouse.sources import Source, configured_sources
from jobhouse.store import open_store
from jobhouse.store.base import KeyStore
from jobhouse.store.migrations import migrations
from jobhouse.webhooks import Sender, WebhookOptions, Webhooks
from jobhouse.worker import Worker

DEFAULT_WORKSPACE = "default"


def load_apps(specs: Sequence[str]) -> list[Registry]:
    """The registries named by ``module:attribute`` specs."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    registries = []
    for spec in specs:
        module_name, _, attribute = spec.partition(":")
        if not module_name or not attribute:
            raise ConfigurationError(f"--app takes module:attribute, e.g. myproject.jobs:jobs (got {spec!r})")
        registry = getattr(importlib.import_module(module_name), attribute, None)
        if not isinstance(registry, Registry):
            raise ConfigurationError(f"{spec} is not a jobhouse Registry")
        registries.append(registry)
    return registries


class Runtime:
    """Builds and owns everything one process needs."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        sources: Sequence[Source] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.store = open_store(
            settings.store_url(), clock=clock, pool_size=settings.pool_size, timeout=settings.store_timeout
        )
        #: The keys requests are checked against (read on the event loop's thread on SQLite, cached
        #: on PostgreSQL: see the stores).
        self.keys: KeyStore = self.store.keys
        if sources is None:
            sources = configured_sources(
                settings.sources,
                environ or os.environ,
                catalogs=settings.catalogs,
                apt_lists=settings.apt_lists,
                dpkg_dir=settings.dpkg_dir,
                hide_paths=settings.hide_launch_paths,
            )
        self.searcher = Searcher(self.store, sources, scanner=Scanner(self.store, workers=settings.scan_workers))
        self.operator_kinds = load_apps(settings.apps) if registry is None else [registry]
        self.registry = builtin_kinds(self.searcher)
        for kinds in self.operator_kinds:
            self.registry = self.registry.merged(kinds)
        #: What this process counts and times, for ``/metrics`` (see `jobhouse.metrics`).
        self.metrics = Metrics(enabled=settings.metrics, store=self.store.backend)
        #: The migrations this build knows, for `ready`.
        self.schema = [migration.version for migration in migrations(self.store.backend)]
        #: What clients (API answers, event streams, webhook bodies) are shown of failures.
        self.disclosure = Disclosure(settings.redact_errors, self.registry)
        self.queue = Queue(self.store, self.registry, self.metrics)
        self.feed = Feed(
            self.store,
            interval=settings.refresh_interval,
            max_waiters=settings.max_waits,
            max_per_owner=settings.max_waits_per_key,
        )
        self.service = JobService(
            self.queue,
            self.feed,
            max_queued=settings.max_queued,
            idempotency_ttl=settings.idempotency_ttl,
            long_poll_max=settings.long_poll_max,
            rates={SYNC_KIND: Rate(settings.sync_rate, settings.sync_burst)},
        )
        #: Webhook subscriptions and the check of every webhook URL (see `jobhouse.webhooks`).
        self.webhooks = Webhooks(self.store, HostPolicy.of(settings.webhook_hosts))

    async def open(self) -> None:
        if self.settings.database is None:  # the store lives in the data directory
            self.settings.ensure_data_dir()
        await self.store.open()

    async def close(self) -> None:
        await self.searcher.close()
        await self.store.close()

    async def first_key(self) -> str | None:
        """On a store's very first run, a key for the default workspace; otherwise None."""
        if await self.store.keys.first_run():
            key, _ = await create_key(self.store, DEFAULT_WORKSPACE, label="created on first run")
            return key
        return None

    async def ready(self) -> int:
        """The store's schema version, when the store answers and has exactly the migrations this
        build knows; else `StoreUnavailable`, or `SchemaMismatch` (behind: run ``jobhouse migrate``;
        ahead: a newer build migrated it)."""
        applied = await self.metrics.timed("migrations", self.store.migrations_applied())
        known = self.schema
        if applied == known:
            return known[-1]
        newer = sorted(set(applied) - set(known))
        if newer:
            raise SchemaMismatch(
                f"The store's schema is ahead of this build: it has migration {newer[-1]}, "
                f"this build knows up to {known[-1]}"
            )
        missing = sorted(set(known) - set(applied))
        raise SchemaMismatch(f"The store's schema is behind this build: migration {missing[0]} is not applied yet")

    def webhook_sender(self) -> Sender:
        """The service that sends the webhook deliveries the store owes (in every process)."""
        settings = self.settings
        options = WebhookOptions(
            timeout=settings.webhook_timeout,
            lease=settings.webhook_lease,
            backoff=Backoff(base=settings.webhook_backoff, cap=3600.0),
            max_attempts=settings.webhook_max_attempts,
            max_age=settings.webhook_max_age,
            poll_interval=settings.poll_interval,
        )
        return Sender(self.store, self.store.hub, self.webhooks.policy, options, self.disclosure)

    def services(self, *, workers: bool) -> list[Service]:
        services: list[Service] = [
            *self.store.services(),
            *([self.webhook_sender()] if self.settings.webhook_hosts else []),  # webhooks off: nothing to send
            self.feed,
            Refresher(self.store.hub, self.store.seen, self.settings.refresh_interval),
            Pruner(self.store, self.settings.retention(), self.settings.prune_interval, self.settings.idempotency_ttl),
        ]
        if any(is_periodic(kind) for kind in self.registry):  # late periods only while their keys are kept
            services.append(Periodic(self.queue, horizon=self.settings.idempotency_ttl))
        if workers:
            services.append(Worker(self.queue, self.settings.worker_options()))
            services.append(Rescuer(self.queue, self.settings.rescue_interval))
        return services

    async def run(self, stop: asyncio.Event, *, workers: bool) -> None:
        """Run the background services (and workers, if asked) until `stop` is set."""
        await run_services(self.services(workers=workers), stop)
