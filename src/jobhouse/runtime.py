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

from jobhouse.builtin import builtin_kinds
from jobhouse.clock import Clock
from jobhouse.errors import ConfigurationError
from jobhouse.feed import Feed
from jobhouse.hub import Refresher
from jobhouse.keys import create_key
from jobhouse.maintenance import Pruner, Rescuer, Service, run_services
from jobhouse.queue import Queue
from jobhouse.registry import Registry
from jobhouse.scanner import Scanner
from jobhouse.search import Searcher
from jobhouse.service import JobService
from jobhouse.settings import Settings
from jobhouse.sources import Source, configured_sources
from jobhouse.store import open_store
from jobhouse.store.base import KeyStore
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
            settings.database, clock=clock, pool_size=settings.pool_size, timeout=settings.store_timeout
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
            )
        self.searcher = Searcher(self.store, sources, scanner=Scanner(self.store, workers=settings.scan_workers))
        self.operator_kinds = load_apps(settings.apps) if registry is None else [registry]
        self.registry = builtin_kinds(self.searcher)
        for kinds in self.operator_kinds:
            self.registry = self.registry.merged(kinds)
        self.queue = Queue(self.store, self.registry)
        self.feed = Feed(self.store, interval=settings.refresh_interval)
        self.service = JobService(
            self.queue,
            self.feed,
            max_queued=settings.max_queued,
            idempotency_ttl=settings.idempotency_ttl,
            long_poll_max=settings.long_poll_max,
        )

    async def open(self) -> None:
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

    def services(self, *, workers: bool) -> list[Service]:
        services: list[Service] = [
            *self.store.services(),
            self.feed,
            Refresher(self.store.hub, self.store.seen, self.settings.refresh_interval),
            Pruner(self.store, self.settings.retention(), self.settings.prune_interval, self.settings.idempotency_ttl),
        ]
        if workers:
            services.append(Worker(self.queue, self.settings.worker_options()))
            services.append(Rescuer(self.queue, self.settings.rescue_interval))
        return services

    async def run(self, stop: asyncio.Event, *, workers: bool) -> None:
        """Run the background services (and workers, if asked) until `stop` is set."""
        await run_services(self.services(workers=workers), stop)
