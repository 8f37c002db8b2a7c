"""What clients can do with jobs, independent of how they ask: HTTP, the CLI, or Python.

`JobService` checks requests against the registry (known kind, valid input), then speaks to the
store; it also owns the long-poll: wait for a job to end without holding anything but an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from jobhouse.errors import InvalidRequest, JobNotFound
from jobhouse.ids import new_id, parse_id
from jobhouse.job import Job, NewJob
from jobhouse.registry import Registry
from jobhouse.store.base import JobPage, JobQuery, Store
from jobhouse.validation import check_clean

#: The longest a single long-poll may wait, in seconds.
MAX_WAIT = 120.0
TITLE_MAX = 200
SUBJECT_MAX = 200


class JobService:
    """Create, read, list, wait for and cancel jobs, on behalf of one workspace at a time."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    async def create(
        self,
        workspace: str,
        kind: str,
        *,
        input: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        subject: str | None = None,
        title: str | None = None,
    ) -> Job:
        spec = self.registry[kind]
        data = dict(input or {})
        for name, value in (("input", data), ("metadata", metadata or {})):
            if not isinstance(value, Mapping):
                raise InvalidRequest(f"{name} must be a JSON object")
            check_clean(value, name)
        if spec.check_input is not None:
            data = dict(spec.check_input(data))
        if subject is not None and not 0 < len(subject) <= SUBJECT_MAX:
            raise InvalidRequest(f"competitorId must be 1-{SUBJECT_MAX} characters")
        if title is not None and not 0 < len(title) <= TITLE_MAX:
            raise InvalidRequest(f"displayTitle must be 1-{TITLE_MAX} characters")
        new = NewJob(
            id=new_id(),
            workspace=workspace,
            kind=spec.name,
            title=title or spec.title,
            max_attempts=spec.max_attempts,
            steps=spec.steps_for(data),
            subject=subject,
            input=data,
            metadata=dict(metadata or {}),
        )
        (job,) = await self.store.enqueue([new])
        return job

    async def get(self, job_id: str, workspace: str) -> Job:
        canonical = parse_id(job_id)
        job = await self.store.get(canonical, workspace) if canonical else None
        if job is None:
            raise JobNotFound()
        return job

    async def wait(self, job_id: str, workspace: str, timeout: float) -> Job:
        """The job once it ends, or as it is when `timeout` seconds have passed.

        The wait holds no connection or transaction: it registers with the hub, which wakes
        it when the job ends (in this process, or in another one via the refresher).
        """
        job = await self.get(job_id, workspace)
        if job.is_terminal or timeout <= 0:
            return job
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, MAX_WAIT)
        with self.store.hub.watch_end(job.id) as ended:
            while True:
                job = await self.get(job.id, workspace)
                remaining = deadline - loop.time()
                if job.is_terminal or remaining <= 0 or self.store.hub.closing:
                    return job
                try:
                    await asyncio.wait_for(ended.wait(), remaining)
                except TimeoutError:
                    return await self.get(job.id, workspace)
                ended.clear()

    async def list(self, query: JobQuery) -> JobPage:
        return await self.store.list_jobs(query)

    async def cancel(self, job_id: str, workspace: str) -> Job:
        canonical = parse_id(job_id)
        if canonical is None:
            raise JobNotFound()
        return await self.store.cancel(canonical, workspace)
