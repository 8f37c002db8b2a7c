"""The workloads: throughput and latency run every system; http, search and events run jobhouse alone."""

from __future__ import annotations

WORKLOADS = ("throughput", "latency", "http", "search", "events")
