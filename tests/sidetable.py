"""Reading the side table that the `record` test kind writes, and checking what it proves."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    job: str
    attempt: int
    pid: int
    started: float
    ended: float | None = None


@dataclass
class SideTable:
    runs: dict[str, list[Run]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def read(cls, path: Path) -> SideTable:
        table = cls()
        open_runs: dict[tuple[str, int, int], Run] = {}
        for line in path.read_text().splitlines():
            job, attempt, pid, event, at = line.split()
            key = (job, int(attempt), int(pid))
            if event == "start":
                run = Run(job, int(attempt), int(pid), float(at))
                table.runs[job].append(run)
                open_runs[key] = run
            else:
                open_runs[key].ended = float(at)
        return table

    def extra_runs(self) -> list[Run]:
        """Every run of a job except its last one: each must be explained by a fault."""
        return [run for runs in self.runs.values() for run in runs[:-1]]
