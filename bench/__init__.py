"""jobhouse's benchmark suite: jobhouse and its peers, side by side, in one run.

Run it with ``scripts/bench`` (which makes ``bench/.venv`` with the peers installed); see
``docs/benchmarks.md``. Nothing in ``tests/`` imports this package.
"""

from __future__ import annotations
