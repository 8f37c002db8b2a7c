"""When a failed attempt runs again: exponential backoff with jitter.

Attempt 1 failing waits about `base` seconds, attempt 2 about twice that, and so on up to
`cap`; each delay is spread by ±`jitter` (a fraction) so that jobs failing together do not all
come back in the same instant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 1.0
    cap: float = 300.0
    jitter: float = 0.25

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        exponent = min(max(attempt, 1) - 1, 62)
        raw = min(self.cap, self.base * 2.0**exponent)
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.cap, raw * (1.0 + spread)))
