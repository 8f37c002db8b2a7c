"""The workloads: throughput and latency run every system; http runs jobhouse's API alone."""

from __future__ import annotations

WORKLOADS = ("throughput", "latency", "http")
