"""A workspace's statistics (`Store.stats`), in the SQL both backends share (see migration 0010).

No index exists for them alone (every job would pay for it as it is queued, claimed and ended):
they are read from indexes the jobs are in anyway, without reading a table row. Queued jobs, due by
now or after, and the first of them due, from the workspace's range of `jobs_queued_by_workspace`
(workspace, priority, round, kind, run_at); running jobs from `jobs_leases` (every running job, a
few per worker slot); jobs ended since the window's start from `jobs_finished` (status,
completed_at, workspace, kind), whose range covers the window's ended jobs of every workspace. So
the cost grows with the workspace's queued jobs, the running jobs and the jobs ended in the window,
never with the rest of the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from jobhouse.store.base import KindStats

_ENDED = ("completed", "failed", "cancelled")


def stats_sql(jobs: str, param: Callable[[str], str], hint: Callable[[str], str] = lambda index: "") -> str:
    """The statistics query on the table `jobs`: named parameters ``workspace``, ``since`` and ``now``
    as `param` spells them, each index named to the planner where `hint` says how (SQLite's
    ``INDEXED BY``). Rows of (what, kind, count, count scheduled, first due): `what` is ``queued``
    (count: due by now, then those due later, and the least run_at of the due ones), ``running``, or
    the status the jobs ended in."""
    workspace, since, now = param("workspace"), param("since"), param("now")
    ended = ", ".join(f"'{status}'" for status in _ENDED)
    return (
        f"SELECT 'queued', kind, count(*) FILTER (WHERE run_at <= {now}), count(*) FILTER (WHERE run_at > {now}), "
        f"min(run_at) FILTER (WHERE run_at <= {now}) FROM {jobs}{hint('jobs_queued_by_workspace')} "
        f"WHERE workspace = {workspace} AND status = 'queued' GROUP BY kind "
        f"UNION ALL SELECT 'running', kind, count(*), 0, NULL FROM {jobs}{hint('jobs_leases')} "
        f"WHERE status = 'running' AND workspace = {workspace} GROUP BY kind "
        f"UNION ALL SELECT status, kind, count(*), 0, NULL FROM {jobs}{hint('jobs_finished')} "
        f"WHERE status IN ({ended}) AND completed_at >= {since} AND workspace = {workspace} GROUP BY status, kind"
    )


def kind_stats(rows: Iterable[tuple[Any, ...]], time: Callable[[Any], datetime]) -> list[KindStats]:
    """`KindStats` from the rows of `stats_sql`, one per kind with anything counted, sorted by kind;
    `time` decodes the driver's timestamp."""
    found: dict[str, dict[str, Any]] = {}
    for what, kind, count, later, due in rows:
        figures = found.setdefault(kind, {})
        if what == "queued":
            figures |= {"ready": count, "scheduled": later, "oldest_ready": None if due is None else time(due)}
        else:
            figures[what] = count
    return [KindStats(kind, **found[kind]) for kind in sorted(found)]
