"""A workspace's statistics (`Store.stats`), in the SQL both backends share (see migration 0010).

Every figure is a count of one range of one index, so nothing is sorted or grouped, and no table row
is read: the workspace's kinds come from the listing index by kind (`jobs_by_kind`), one kind after
another (a recursive query that seeks to the next kind, so a kind with a million jobs costs what a
kind with one does); then, for each kind, its queued jobs due by now and after, the first of them
due, and its running jobs, from `jobs_active_by_workspace` (workspace, kind, status, run_at); and
its jobs ended since the window's start, by how they ended, from `jobs_finished_by_workspace`
(workspace, kind, status, completed_at). The cost grows with the kinds and with the jobs counted,
never with the rest of the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from jobhouse.store.base import KindStats

_ACTIVE = "status IN ('queued', 'running')"
_FINISHED = "status IN ('completed', 'failed', 'cancelled')"


def stats_sql(jobs: str, param: Callable[[str], str], hint: Callable[[str], str] = lambda index: "") -> str:
    """The statistics query on the table `jobs`: named parameters ``workspace``, ``since`` and ``now``
    as `param` spells them, each index named to the planner where `hint` says how (SQLite's
    ``INDEXED BY``). One row per kind: kind, ready, scheduled, oldest ready run_at, running,
    completed, failed, cancelled."""
    workspace, since, now = param("workspace"), param("since"), param("now")
    kinds = f"SELECT kind FROM {jobs}{hint('jobs_by_kind')} WHERE workspace = {workspace}"
    of_kind = f"WHERE workspace = {workspace} AND kind = k.kind"
    active = f"FROM {jobs}{hint('jobs_active_by_workspace')} {of_kind} AND {_ACTIVE}"
    ended = f"FROM {jobs}{hint('jobs_finished_by_workspace')} {of_kind} AND {_FINISHED}"
    return (
        f"WITH RECURSIVE k(kind) AS (SELECT ({kinds} ORDER BY kind LIMIT 1) UNION ALL "
        f"SELECT ({kinds} AND kind > k.kind ORDER BY kind LIMIT 1) FROM k WHERE k.kind IS NOT NULL) "
        f"SELECT kind, (SELECT count(*) {active} AND status = 'queued' AND run_at <= {now}), "
        f"(SELECT count(*) {active} AND status = 'queued' AND run_at > {now}), "
        f"(SELECT min(run_at) {active} AND status = 'queued' AND run_at <= {now}), "
        f"(SELECT count(*) {active} AND status = 'running'), "
        + ", ".join(
            f"(SELECT count(*) {ended} AND status = '{status}' AND completed_at >= {since})"
            for status in ("completed", "failed", "cancelled")
        )
        + " FROM k WHERE k.kind IS NOT NULL"
    )


def kind_stats(rows: Iterable[tuple[Any, ...]], time: Callable[[Any], datetime]) -> list[KindStats]:
    """`KindStats` from the rows of `stats_sql`, sorted by kind, without the kinds that count nothing
    (their jobs all ended before the window); `time` decodes the driver's timestamp."""
    found = [
        KindStats(kind, ready, scheduled, running, completed, failed, cancelled, None if due is None else time(due))
        for kind, ready, scheduled, due, running, completed, failed, cancelled in rows
    ]
    return sorted(
        (s for s in found if s.ready or s.scheduled or s.running or s.completed or s.failed or s.cancelled),
        key=lambda s: s.kind,
    )
