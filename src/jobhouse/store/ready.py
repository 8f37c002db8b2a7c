"""How queued jobs line up for claims, in the SQL both backends share (see migration 0009).

A queued job is *scheduled* while its ``run_at`` is ahead, and *ready* once it is due. Claims read
ready jobs only, in one index order: priority (higher first), then ``round``, then id. A job takes
its round when it becomes ready (created, retried, handed back, or found due by a claim): one more
than the last round its workspace holds at its priority, or, when the workspace holds none there,
the round being served (the least round of the ready jobs at that priority). So a workspace with
ten thousand jobs ready holds rounds r..r+9999, a job of another workspace created meanwhile takes
round r and is claimed next: claims go round the workspaces with ready work, one job each.

Jobs of a kind with a concurrency limit carry a ``concurrency_key`` and line up in an index of
their own (`limited_sql`), so jobs held back by a limit never slow the claims of the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobhouse.job import Job

#: A scheduled job's round, until it is due.
SCHEDULED_ROUND = -1
#: Scheduled jobs found due by one claim, at most (the rest by the next).
PROMOTE_BATCH = 1000
#: The limit of a kind that has jobs held to a limit but no limit any more (it was removed).
NO_LIMIT = 2**31 - 1


def claim_order(candidate: tuple[str, int, int]) -> tuple[int, int, str]:
    """The order claims take ready jobs in, for (id, priority, round) rows read apart."""
    return -candidate[1], candidate[2], candidate[0]


def in_claim_order(claimed: list[tuple[Job, int]]) -> list[Job]:
    """Claimed jobs, each with the round it was claimed at, in the order they were taken."""
    claimed.sort(key=lambda pair: claim_order((pair[0].id, pair[0].priority, pair[1])))
    return [job for job, _ in claimed]


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few words in which SQLite and PostgreSQL differ here."""

    jobs: str  # the table
    ready: str  # the condition "q is ready" for a queued row aliased q
    ready_index: str = ""  # a hint that names jobs_ready, where the backend takes one

    def next_round(self, workspace: str, priority: str) -> str:
        """SQL for the round a job of `workspace` at `priority` (SQL expressions) takes as it becomes
        ready; it reads queued jobs only, so the job itself counts only if it is already queued."""
        return (
            f"coalesce((SELECT max(q.round) + 1 FROM {self.jobs} AS q WHERE q.status = 'queued' "
            f"AND q.workspace = {workspace} AND q.priority = {priority} AND q.round >= 0), "
            f"(SELECT min(q.round) FROM {self.jobs} AS q {self.ready_index} WHERE q.status = 'queued' "
            f"AND {self.ready} AND q.concurrency_key IS NULL AND q.priority = {priority}), 0)"
        )

    def limited(self, kind: str, limit: str, count: str) -> str:
        """SQL selecting (id, priority, round) of up to `count` ready jobs of `kind` that can start without any of
        their keys going over `limit` running jobs, in claim order (all three are SQL expressions)."""
        return (
            "SELECT c.id, c.priority, c.round FROM (SELECT q.id, q.concurrency_key, q.priority, q.round, "
            "row_number() OVER (PARTITION BY q.concurrency_key ORDER BY q.priority DESC, q.round, q.id) AS place "
            f"FROM {self.jobs} AS q WHERE q.status = 'queued' AND {self.ready} AND q.concurrency_key IS NOT NULL "
            f"AND q.kind = {kind}) AS c LEFT JOIN (SELECT r.concurrency_key, count(*) AS running FROM {self.jobs} "
            f"AS r WHERE r.status = 'running' AND r.kind = {kind} AND r.concurrency_key IS NOT NULL "
            "GROUP BY r.concurrency_key) AS busy ON busy.concurrency_key = c.concurrency_key "
            f"WHERE c.place + coalesce(busy.running, 0) <= {limit} ORDER BY c.priority DESC, c.round, c.id "
            f"LIMIT {count}"
        )
