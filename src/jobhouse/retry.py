"""How long to wait before trying again: exponential backoff with jitter.

Attempt 1 failing waits about `base` seconds, attempt 2 about twice that, and so on up to
`cap`; each delay is spread by ±`jitter` (a fraction) so that jobs failing together do not all
come back in the same instant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: `delay(n)` after the n-th failure in a row."""

    base: float = 1.0
    cap: float = 300.0
    jitter: float = 0.25

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        exponent = min(max(attempt, 1) - 1, 62)
        raw = min(self.cap, self.base * 2.0**exponent)
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.cap, raw * (1.0 + spread)))


#: How long a loop that finds the store unavailable waits before it tries again (claims,
#: heartbeats, reports, outcomes, the PostgreSQL listener): 0.1 s, doubling up to 5 s.
STORE_RETRY = Backoff(base=0.1, cap=5.0, jitter=0.1)
