"""What each peer's worker process imports: its app and a no-op task, configured from ``BENCH_*`` variables."""

from __future__ import annotations
