"""Job events: one per committed change of a job's status, attempt, steps or progress.

The stores write them with triggers on the jobs table (so no write path can forget one) into a
change log numbered in commit order; `jobhouse.feed.Feed` follows that log for everyone in a
process who watches jobs: event streams and long-polls.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobhouse.job import TERMINAL_STATUSES, Job, JobStatus, Step


class Change(enum.StrEnum):
    """What an event says changed, the most telling first."""

    CREATED = "created"
    STATUS = "status"
    ATTEMPT = "attempt"
    STEP = "step"
    PROGRESS = "progress"


#: The columns of the change log every event read selects, in the order `event_from_row` reads them.
EVENT_COLUMNS = "seq, job_id, workspace, kind, subject, change, status, progress, current_step, steps, attempt, at"


@dataclass(slots=True, eq=False)
class JobEvent:
    """A job as it was right after one change.

    `job` is the whole job, attached to terminal events by whoever delivers them (its result or
    error); `views` holds the bodies built from this event, so that many subscribers of one job
    share one rendering.
    """

    seq: int
    job_id: str
    workspace: str
    kind: str
    subject: str | None
    change: Change
    status: JobStatus
    progress: int
    current_step: str | None
    steps: tuple[Step, ...]
    attempt: int
    at: datetime
    job: Job | None = None
    views: dict[str, bytes] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def event_from_row(row: Sequence[Any], json: Callable[[Any], Any], time: Callable[[Any], datetime]) -> JobEvent:
    """A `JobEvent` from the columns of `EVENT_COLUMNS`; `json` decodes the steps, `time` the moment."""
    return JobEvent(
        seq=row[0],
        job_id=str(row[1]),
        workspace=row[2],
        kind=row[3],
        subject=row[4],
        change=Change(row[5]),
        status=JobStatus(row[6]),
        progress=row[7],
        current_step=row[8],
        steps=_steps(json(row[9])),
        attempt=row[10],
        at=time(row[11]),
    )


def _steps(items: Sequence[Any]) -> tuple[Step, ...]:
    return tuple(Step.from_dict(item) for item in items)
