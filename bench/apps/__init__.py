"""What the benchmark's processes run: each peer's app with its `record` task (`bench.recorder`), and helpers."""

from __future__ import annotations
