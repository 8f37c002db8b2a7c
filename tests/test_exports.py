"""The public API is small and deliberate: changing it means changing this list."""

from __future__ import annotations

import jobhouse


def test_the_public_names() -> None:
    assert sorted(jobhouse.__all__) == [
        "Job",
        "JobCancelled",
        "JobContext",
        "JobStatus",
        "JobhouseError",
        "Queue",
        "Registry",
        "__version__",
        "open_store",
    ]
    for name in jobhouse.__all__:
        assert getattr(jobhouse, name) is not None
