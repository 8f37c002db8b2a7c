"""The store contract: every backend must pass every test here (see `jobhouse.store.base`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest

from jobhouse import codec
from jobhouse.catalog import OS, AppKind, Entry
from jobhouse.clock import ManualClock
from jobhouse.errors import (
    IdempotencyConflict,
    InvalidRequest,
    JobAlreadyFinished,
    JobNotFinished,
    JobNotFound,
    JobNotRetryable,
    QuotaExceeded,
)
from jobhouse.hub import Seen
from jobhouse.ids import new_id
from jobhouse.job import (
    CANCELLED_STEP,
    AttemptRef,
    Failure,
    Job,
    JobStatus,
    NewJob,
    Outcome,
    Report,
    Step,
    StepStatus,
    Verdict,
)
from jobhouse.keys import ApiKey
from jobhouse.store.base import DeliveryQuery, Idempotency, JobQuery, KindStats, Rescued, Store
from jobhouse.store.migrations import migrations
from jobhouse.webhooks import Delivery, DeliveryStatus, Result, Subscription

STEPS = (Step("a", "Step A"), Step("b", "Step B"))


def new_job(kind: str = "k", workspace: str = "ws", **fields: object) -> NewJob:
    return NewJob(
        id=new_id(),
        workspace=workspace,
        kind=kind,
        title=fields.pop("title", "A job"),  # type: ignore[arg-type]
        max_attempts=fields.pop("max_attempts", 3),  # type: ignore[arg-type]
        steps=STEPS,
        **fields,  # type: ignore[arg-type]
    )


async def enqueue(store: Store, count: int = 1, **fields: object) -> list[Job]:
    return await store.enqueue([new_job(**fields) for _ in range(count)])  # type: ignore[arg-type]


def completed(job: Job, result: object = None) -> Outcome:
    steps = tuple(Step(s.id, s.name, StepStatus.COMPLETED) for s in job.steps)
    return Outcome(job.ref, Verdict.COMPLETED, 100, steps, result=codec.encode(result), result_type="thing")


def failed(job: Job, verdict: Verdict = Verdict.FAILED, retry_at: object = None) -> Outcome:
    return Outcome(
        job.ref,
        verdict,
        40,
        job.steps,
        failure=Failure("it broke", "ValueError", job.attempt),
        retry_at=retry_at,
    )  # type: ignore[arg-type]


# -- enqueue, get, list -----------------------------------------------------------------------


async def test_enqueued_jobs_read_back_whole(store: Store, clock: ManualClock) -> None:
    new = new_job(subject="c-1", input={"x": [1, "two"]}, metadata={"m": {"n": None}})
    (job,) = await store.enqueue([new])

    got = await store.get(new.id)

    assert got == job
    assert got.status is JobStatus.QUEUED
    assert got.subject == "c-1"
    assert got.input == {"x": [1, "two"]}
    assert got.metadata == {"m": {"n": None}}
    assert got.steps == STEPS
    assert got.attempt == 0
    assert got.max_attempts == 3
    assert got.created_at == got.updated_at == got.run_at == clock.now()
    assert got.started_at is None
    assert got.completed_at is None


async def test_get_is_scoped_to_the_workspace(store: Store) -> None:
    (job,) = await enqueue(store, workspace="ours")
    assert await store.get(job.id, "ours") == job
    assert await store.get(job.id, "theirs") is None
    assert await store.get(new_id()) is None


async def test_list_is_newest_first_with_filters_and_cursor(store: Store, clock: ManualClock) -> None:
    jobs = []
    for index in range(5):
        clock.advance(1)
        (job,) = await enqueue(store, kind="even" if index % 2 == 0 else "odd", subject=f"s{index % 2}")
        jobs.append(job)
    await enqueue(store, workspace="elsewhere")
    newest_first = [j.id for j in reversed(jobs)]

    page = await store.list_jobs(JobQuery("ws", limit=2))
    assert [j.id for j in page.jobs] == newest_first[:2]
    page2 = await store.list_jobs(JobQuery("ws", limit=2, after=page.next))
    page3 = await store.list_jobs(JobQuery("ws", limit=2, after=page2.next))
    assert [j.id for j in page2.jobs + page3.jobs] == newest_first[2:]
    assert page3.next is None

    assert [j.id for j in (await store.list_jobs(JobQuery("ws", kind="odd"))).jobs] == [
        jobs[3].id,
        jobs[1].id,
    ]
    assert [j.id for j in (await store.list_jobs(JobQuery("ws", subject="s0"))).jobs] == [
        jobs[4].id, jobs[2].id, jobs[0].id,
    ]  # fmt: skip
    statuses = frozenset({JobStatus.RUNNING})
    assert (await store.list_jobs(JobQuery("ws", statuses=statuses))).jobs == []


async def test_jobs_created_in_the_same_instant_still_page_in_order(store: Store) -> None:
    jobs = await enqueue(store, 6)
    seen = []
    page = await store.list_jobs(JobQuery("ws", limit=4))
    seen += page.jobs
    page = await store.list_jobs(JobQuery("ws", limit=4, after=page.next))
    seen += page.jobs
    assert sorted(j.id for j in seen) == sorted(j.id for j in jobs)
    assert len({j.id for j in seen}) == 6


# -- claim, report, finish ---------------------------------------------------------------------


async def test_claim_takes_due_jobs_of_its_kinds_oldest_first(store: Store, clock: ManualClock) -> None:
    first = await enqueue(store, 2, kind="a")
    clock.advance(1)
    await enqueue(store, 1, kind="other")
    later = await enqueue(store, 1, kind="a", run_at=clock.now() + timedelta(seconds=60))

    claimed = await store.claim("w1", {"a"}, 10, lease=30)

    assert [j.id for j in claimed] == [j.id for j in first]
    for job in claimed:
        assert job.status is JobStatus.RUNNING
        assert job.attempt == 1
        assert job.worker == "w1"
        assert job.started_at == clock.now()
        assert job.lease_expires_at == clock.now() + timedelta(seconds=30)
    assert await store.claim("w1", {"a"}, 10, lease=30) == []
    clock.advance(61)
    assert [j.id for j in await store.claim("w1", {"a"}, 10, lease=30)] == [later[0].id]


async def test_claim_respects_the_limit(store: Store) -> None:
    await enqueue(store, 5)
    assert len(await store.claim("w", {"k"}, 3, lease=30)) == 3
    assert len(await store.claim("w", {"k"}, 3, lease=30)) == 2


async def test_concurrent_claims_never_share_a_job(store: Store) -> None:
    await enqueue(store, 60)
    batches = await asyncio.gather(*(store.claim(f"w{i}", {"k"}, 7, lease=30) for i in range(12)))
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == len(set(ids)) == 60


async def test_report_writes_progress_under_the_fence(store: Store) -> None:
    await enqueue(store)
    (job,) = await store.claim("w", {"k"}, 1, lease=30)
    steps = (Step("a", "Step A", StepStatus.COMPLETED), Step("b", "Step B", StepStatus.RUNNING))

    lost = await store.report([Report(job.ref, 50, steps, "Step B")], lease=30)

    assert lost == set()
    got = await store.get(job.id)
    assert got is not None
    assert (got.progress, got.steps, got.current_step) == (50, steps, "Step B")
    stale = AttemptRef(job.id, job.attempt + 1)
    assert await store.report([Report(stale, 90, steps, None)], lease=30) == {job.id}
    assert (await store.get(job.id)).progress == 50  # type: ignore[union-attr]


async def test_a_job_completes_exactly_once(store: Store, clock: ManualClock) -> None:
    await enqueue(store)
    (job,) = await store.claim("w", {"k"}, 1, lease=30)
    clock.advance(2)

    assert await store.finish([completed(job, {"answer": 42})]) == [True]
    assert await store.finish([completed(job, {"answer": 43})]) == [False]
    assert await store.finish([failed(job)]) == [False]

    done = await store.get(job.id)
    assert done is not None
    assert done.status is JobStatus.COMPLETED
    assert done.result == {"answer": 42}
    assert done.result_type == "thing"
    assert done.progress == 100
    assert done.completed_at == clock.now()
    assert done.lease_expires_at is None
    assert all(step.status is StepStatus.COMPLETED for step in done.steps)


async def test_a_failure_keeps_each_attempts_error(store: Store, clock: ManualClock) -> None:
    await enqueue(store, max_attempts=2)
    (job,) = await store.claim("w", {"k"}, 1, lease=30)
    retry_at = clock.now() + timedelta(seconds=10)

    assert await store.finish([failed(job, Verdict.RETRY, retry_at)]) == [True]
    queued = await store.get(job.id)
    assert queued is not None
    assert queued.status is JobStatus.QUEUED
    assert queued.run_at == retry_at
    assert queued.progress == 0
    assert all(step.status is StepStatus.PENDING for step in queued.steps)
    assert [e.attempt for e in queued.errors] == [1]
    assert await store.claim("w", {"k"}, 1, lease=30) == []

    clock.advance(10)
    (again,) = await store.claim("w", {"k"}, 1, lease=30)
    assert again.attempt == 2
    assert await store.finish([failed(again)]) == [True]
    final = await store.get(job.id)
    assert final is not None
    assert final.status is JobStatus.FAILED
    assert final.error == Failure("it broke", "ValueError", 2)
    assert [e.attempt for e in final.errors] == [1, 2]
    assert final.completed_at == clock.now()


async def test_many_outcomes_in_one_call(store: Store) -> None:
    await enqueue(store, 20)
    claimed = await store.claim("w", {"k"}, 20, lease=30)
    assert await store.finish([completed(job, job.id) for job in claimed]) == [True] * 20
    for job in claimed:
        assert (await store.get(job.id)).result == job.id  # type: ignore[union-attr]


# -- cancel ----------------------------------------------------------------------------------


async def test_cancel_ends_a_queued_job(store: Store, clock: ManualClock) -> None:
    (job,) = await enqueue(store)
    cancelled, changed = await store.cancel(job.id, "ws")
    assert changed
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.current_step == CANCELLED_STEP
    assert cancelled.completed_at == clock.now()
    assert await store.get(job.id) == cancelled
    assert await store.claim("w", {"k"}, 1, lease=30) == []
    assert await store.cancel(job.id, "ws") == (cancelled, False)


async def test_cancel_beats_a_late_result(store: Store) -> None:
    await enqueue(store)
    (job,) = await store.claim("w", {"k"}, 1, lease=30)
    report = Report(job.ref, 50, (Step("a", "Step A", StepStatus.RUNNING), STEPS[1]), "Step A")
    await store.report([report], lease=30)

    cancelled, _ = await store.cancel(job.id)

    assert cancelled.steps[0].status is StepStatus.FAILED
    assert await store.finish([completed(job, "late")]) == [False]
    assert await store.heartbeat("w", [job.ref], lease=30) == {job.id}
    got = await store.get(job.id)
    assert got is not None
    assert got.status is JobStatus.CANCELLED
    assert got.result is None


async def test_cancel_refuses_finished_jobs_and_strangers(store: Store) -> None:
    await enqueue(store)
    (job,) = await store.claim("w", {"k"}, 1, lease=30)
    await store.finish([completed(job)])
    with pytest.raises(JobAlreadyFinished):
        await store.cancel(job.id)
    (other,) = await enqueue(store, workspace="ours")
    with pytest.raises(JobNotFound):
        await store.cancel(other.id, "theirs")
    with pytest.raises(JobNotFound):
        await store.cancel(new_id())
    assert (await store.get(other.id)).status is JobStatus.QUEUED  # type: ignore[union-attr]


# -- leases, rescue, release -----------------------------------------------------------------


async def test_heartbeats_extend_leases_and_report_lost_attempts(store: Store, clock: ManualClock) -> None:
    await enqueue(store, 2)
    mine, gone = await store.claim("w", {"k"}, 2, lease=10)
    await store.cancel(gone.id)
    clock.advance(8)

    lost = await store.heartbeat("w", [mine.ref, gone.ref], lease=10)

    assert lost == {gone.id}
    assert (await store.get(mine.id)).lease_expires_at == clock.now() + timedelta(seconds=10)  # type: ignore[union-attr]
    assert await store.heartbeat("someone-else", [mine.ref], lease=10) == {mine.id}


async def test_the_rescuer_requeues_jobs_whose_lease_expired(store: Store, clock: ManualClock) -> None:
    await enqueue(store, 2)
    stale, fresh = await store.claim("w", {"k"}, 2, lease=10)
    clock.advance(6)
    await store.heartbeat("w", [fresh.ref], lease=10)
    clock.advance(5)

    assert await store.rescue() == Rescued(requeued=[stale.id], failed=[], kinds={stale.id: "k"})

    requeued = await store.get(stale.id)
    assert requeued is not None
    assert requeued.status is JobStatus.QUEUED
    assert requeued.worker is None
    assert [(e.type, e.attempt) for e in requeued.errors] == [("lost", 1)]
    assert await store.finish([completed(stale)]) == [False]
    (again,) = await store.claim("w2", {"k"}, 1, lease=10)
    assert (again.id, again.attempt) == (stale.id, 2)
    assert await store.rescue() == Rescued([], [])


async def test_a_job_lost_on_its_last_attempt_fails(store: Store, clock: ManualClock) -> None:
    await enqueue(store, max_attempts=1)
    (job,) = await store.claim("w", {"k"}, 1, lease=5)
    clock.advance(6)

    assert await store.rescue() == Rescued(requeued=[], failed=[job.id], kinds={job.id: "k"})

    dead = await store.get(job.id)
    assert dead is not None
    assert dead.status is JobStatus.FAILED
    assert dead.error is not None
    assert dead.error.type == "lost"


async def test_release_hands_a_job_back_at_once(store: Store) -> None:
    await enqueue(store)
    (job,) = await store.claim("w", {"k"}, 1, lease=30)
    assert await store.release([job.ref]) == 1
    assert await store.release([job.ref]) == 0
    (again,) = await store.claim("w", {"k"}, 1, lease=30)
    assert again.id == job.id


async def test_an_unstarted_release_is_as_if_the_job_was_never_claimed(store: Store, clock: ManualClock) -> None:
    first, second = await enqueue(store, 2, max_attempts=1)
    clock.advance(1)
    claimed = await store.claim("w", {"k"}, 2, lease=30)
    assert [job.id for job in claimed] == [first.id, second.id]

    assert await store.release([claimed[0].ref], unstarted=True) == 1

    back = await store.get(first.id)
    assert back is not None
    assert (back.status, back.attempt, back.started_at, back.worker) == (JobStatus.QUEUED, 0, None, None)
    assert back.run_at == first.run_at  # its place in the queue is kept: it is claimed first again
    (again,) = await store.claim("w2", {"k"}, 1, lease=30)
    assert (again.id, again.attempt) == (first.id, 1)
    assert await store.release([again.ref], unstarted=True) == 1
    assert await store.release([again.ref], unstarted=True) == 0


async def test_seen_reads_status_and_attempt(store: Store) -> None:
    first, second = await enqueue(store, 2)
    await store.claim("w", {"k"}, 1, lease=30)
    missing = new_id()
    assert await store.seen({first.id, second.id, missing}) == {
        first.id: Seen(JobStatus.RUNNING, 1),
        second.id: Seen(JobStatus.QUEUED, 0),
        missing: None,
    }


# -- values round-trip byte for byte ---------------------------------------------------------

HOSTILE = [
    "C:\\u0000dir",  # text that spells an escaped NUL: a backslash, a u, four zeros
    "\\u0000",
    "emoji \U0001f600 and \U0001f9d1\u200d\U0001f4bb joined",
    "right-to-left \u202eevil\u202c and \u200f marks",
    'quotes " and backslashes \\ and \n newlines \t tabs',
    "\uffff \ufffd \u00e9 \u4e2d\u6587",
    "x" * (1024 * 1024),  # a 1 MiB string
]


@pytest.mark.parametrize("text", HOSTILE, ids=["nul-text", "bare-nul-text", "emoji", "rtl", "escapes", "bmp", "1MiB"])
async def test_hostile_strings_round_trip_byte_for_byte(store: Store, text: str) -> None:
    value = {"text": text, text[:50]: [text[:10], {"nested": text[:100]}], "big": 2**64 - 1, "small": -(2**63)}
    (job,) = await enqueue(store, input=value, metadata=value)
    (running,) = await store.claim("w", {"k"}, 1, lease=30)
    assert await store.finish([completed(running, value)]) == [True]

    got = await store.get(job.id)

    assert got is not None
    for stored in (got.input, got.metadata, got.result):
        assert stored == value  # every string equal, code point for code point
        # and the same bytes, but for the order of an object's keys (PostgreSQL's jsonb keeps its own)
        assert orjson.dumps(stored, option=orjson.OPT_SORT_KEYS) == orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


async def test_a_nul_in_a_result_is_cleaned_on_the_value_alike_on_every_store(store: Store) -> None:
    (job,) = await enqueue(store)
    (running,) = await store.claim("w", {"k"}, 1, lease=30)
    await store.finish([completed(running, {"a\x00b": "c\x00d", "spelled": "\\u0000"})])
    got = await store.get(job.id)
    assert got is not None
    assert got.result == {"a\ufffdb": "c\ufffdd", "spelled": "\\u0000"}


# -- keys and first run ----------------------------------------------------------------------


async def test_keys_are_stored_listed_and_revoked(store: Store, clock: ManualClock) -> None:
    key = ApiKey("abc123def456", "ws", "0" * 64, clock.now(), "label")
    await store.keys.add(key)
    assert await store.keys.get("abc123def456") == key
    assert await store.keys.all() == [key]
    assert await store.keys.revoke("abc123def456")
    assert not await store.keys.revoke("abc123def456")
    assert (await store.keys.get("abc123def456")).revoked_at == clock.now()  # type: ignore[union-attr]
    assert await store.keys.get("nope") is None


async def test_first_run_is_true_once(store: Store) -> None:
    assert await store.keys.first_run()
    assert not await store.keys.first_run()


async def test_migrate_twice_changes_nothing(store: Store) -> None:
    assert await store.migrate() == []


async def test_migrations_applied_are_those_of_its_backend(store: Store) -> None:
    assert await store.migrations_applied() == [migration.version for migration in migrations(store.backend)]


# -- active counts (the metrics' scrape) -------------------------------------------------------


async def test_active_counts_are_queued_and_running_jobs_by_workspace_and_kind(
    store: Store, clock: ManualClock
) -> None:
    assert await store.active_counts() == []
    waiting = await enqueue(store, 2, kind="a", workspace="w1")
    clock.advance(5)
    await enqueue(store, 1, kind="a", workspace="w1")
    done, broken, dropped = await enqueue(store, 3, kind="b", workspace="w2", max_attempts=1)
    later = clock.now() + timedelta(hours=1)
    await enqueue(store, 1, kind="c", workspace="w2", run_at=later)
    await store.claim("w", {"a"}, 1, lease=10)
    claimed = {job.id: job for job in await store.claim("w", {"b"}, 2, lease=10)}
    await store.finish([completed(claimed[done.id]), failed(claimed[broken.id])])
    await store.cancel(dropped.id)  # finished jobs are not counted: the metrics count them as they end

    counts = await store.active_counts()

    assert sorted((c.workspace, c.kind, c.status.value, c.count, c.earliest) for c in counts) == [
        ("w1", "a", "queued", 2, waiting[1].run_at),
        ("w1", "a", "running", 1, None),
        ("w2", "c", "queued", 1, later),
    ]


# -- a workspace's statistics ------------------------------------------------------------------


async def test_stats_are_one_workspaces_jobs_by_kind_and_how_they_ended(store: Store, clock: ManualClock) -> None:
    day = timedelta(days=1)
    assert await store.stats("w1", clock.now() - day, clock.now()) == []
    await enqueue(store, 1, kind="c", workspace="w1")
    await store.finish([completed(job) for job in await store.claim("w", {"c"}, 1, lease=10)])
    clock.advance(2 * 24 * 3600)  # kind c's only job ended before the window: c is left out
    first = await enqueue(store, 3, kind="a", workspace="w1")
    clock.advance(5)
    await enqueue(store, 1, kind="a", workspace="w1", run_at=clock.now() + timedelta(hours=1))
    await store.claim("w", {"a"}, 1, lease=10)
    done, broken, dropped, _running, backing = await enqueue(store, 5, kind="b", workspace="w1", max_attempts=2)
    claimed = {job.id: job for job in await store.claim("w", {"b"}, 5, lease=10)}
    ended = clock.now()
    retry_at = ended + timedelta(minutes=1)
    await store.finish(
        [completed(claimed[done.id]), failed(claimed[broken.id]), failed(claimed[backing.id], Verdict.RETRY, retry_at)]
    )
    await store.cancel(dropped.id)
    await enqueue(store, 2, kind="a", workspace="w2")
    now = clock.now()

    assert await store.stats("w1", now - day, now) == [
        KindStats("a", ready=2, scheduled=1, running=1, oldest_ready=first[1].run_at),
        KindStats("b", scheduled=1, running=1, completed=1, failed=1, cancelled=1),
    ]
    assert await store.stats("w2", now - day, now) == [KindStats("a", ready=2, oldest_ready=now)]
    # the window starts at `since`, inclusive
    assert (await store.stats("w1", ended, now))[1].completed == 1
    assert (await store.stats("w1", ended + timedelta(microseconds=1), now))[1] == KindStats("b", 0, 1, 1)
    # a job whose time has come is ready, before any claim has seen it
    clock.advance(2 * 3600)
    later = {kind.kind: kind for kind in await store.stats("w1", now - day, clock.now())}
    assert (later["a"].ready, later["a"].scheduled, later["a"].oldest_ready) == (3, 0, first[1].run_at)
    assert (later["b"].ready, later["b"].scheduled, later["b"].oldest_ready) == (1, 0, retry_at)


# -- candidate index -------------------------------------------------------------------------


def entry(name: str, source: str = "s", **fields: object) -> Entry:
    return Entry(
        source=source,
        id=f"{source}:{name}",
        app=name,
        name=name.title(),
        os=fields.pop("os", OS.LINUX),  # type: ignore[arg-type]
        kind=fields.pop("kind", AppKind.GUI),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


async def test_entries_are_replaced_per_source(store: Store, clock: ManualClock) -> None:
    version = await store.catalog.version()
    await store.catalog.replace("s", [entry("old")])
    await store.catalog.replace("t", [entry("keep", "t", kind=AppKind.CLI, version="1.2.3")])
    full = entry(
        "new", version="2.0", keywords=("web", "caf\u00e9"), launch="/usr/bin/new --flag", install="apt install new",
        description="It is new \u2013 \u05e9\u05dc\u05d5\u05dd \U0001f600", installed=True, popularity=0.25,
        files=("/usr/bin/new", "/usr/share/applications/new.desktop"), program=False,
    )  # fmt: skip
    await store.catalog.replace("s", [full, entry("mac", os=OS.MACOS)])

    assert await store.catalog.entries("s") == [entry("mac", os=OS.MACOS), full]  # by id, every field kept
    assert [e.id for e in await store.catalog.entries("t")] == ["t:keep"]
    assert await store.catalog.entries("nobody") == []
    states = await store.catalog.states()
    assert states["s"].candidate_count == 2
    assert states["s"].synced_at == clock.now()
    assert (states["s"].generation, states["t"].generation) == (2, 1)
    assert await store.catalog.version() == version + 3


async def test_a_source_error_keeps_the_entries(store: Store) -> None:
    await store.catalog.replace("s", [entry("a")])
    await store.catalog.record_error("s", "disk on fire")
    assert [e.id for e in await store.catalog.entries("s")] == ["s:a"]
    state = (await store.catalog.states())["s"]
    assert state.last_error == "disk on fire"
    assert (state.candidate_count, state.generation) == (1, 1)
    await store.catalog.replace("s", [])
    assert (await store.catalog.states())["s"].last_error is None


# -- create: idempotency keys and quotas ------------------------------------------------------


async def test_an_idempotency_key_returns_the_job_it_made(store: Store, clock: ManualClock) -> None:
    key = Idempotency("order-7", "fingerprint-a")
    first, created = await store.create(new_job(), idempotency=key)
    assert created
    again, created_again = await store.create(new_job(), idempotency=key)
    assert (again.id, created_again) == (first.id, False)
    with pytest.raises(IdempotencyConflict):
        await store.create(new_job(), idempotency=Idempotency("order-7", "fingerprint-b"))
    other_workspace, created_there = await store.create(new_job(workspace="elsewhere"), idempotency=key)
    assert created_there
    assert other_workspace.id != first.id
    assert len((await store.list_jobs(JobQuery("ws"))).jobs) == 1

    clock.advance(24 * 3600 + 1)
    later, created_later = await store.create(new_job(), idempotency=Idempotency("order-7", "fingerprint-b"))
    assert created_later
    assert later.id != first.id


async def test_racing_duplicates_make_one_job(store: Store) -> None:
    key = Idempotency("race", "same-body")
    results = await asyncio.gather(*(store.create(new_job(), idempotency=key) for _ in range(20)))
    assert len({job.id for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len((await store.list_jobs(JobQuery("ws"))).jobs) == 1


async def test_a_workspace_over_its_quota_gets_no_more_queued_jobs(store: Store) -> None:
    for _ in range(3):
        await store.create(new_job(), max_queued=3)
    with pytest.raises(QuotaExceeded):
        await store.create(new_job(), max_queued=3)
    await store.create(new_job(workspace="elsewhere"), max_queued=3)
    await store.claim("w", {"k"}, 1, lease=30)
    await store.create(new_job(), max_queued=3)
    assert len((await store.list_jobs(JobQuery("ws"))).jobs) == 4


async def test_racing_creates_respect_the_quota(store: Store) -> None:
    outcomes = await asyncio.gather(*(store.create(new_job(), max_queued=5) for _ in range(12)), return_exceptions=True)
    assert sum(isinstance(o, tuple) for o in outcomes) == 5
    assert all(isinstance(o, tuple | QuotaExceeded) for o in outcomes)


async def test_creates_made_together_each_get_their_own_answer(store: Store) -> None:
    key = Idempotency("mixed", "body-a")
    first, _ = await store.create(new_job(), idempotency=key)
    await store.create(new_job(workspace="full"))
    outcomes = await asyncio.gather(
        *(store.create(new_job()) for _ in range(10)),
        store.create(new_job(), idempotency=Idempotency("mixed", "body-b")),
        store.create(new_job(), idempotency=key),
        store.create(new_job(workspace="full"), max_queued=1),
        return_exceptions=True,
    )

    plain, (conflict, replay, over_quota) = outcomes[:10], outcomes[10:]
    assert all(isinstance(o, tuple) and o[1] for o in plain), plain
    assert isinstance(conflict, IdempotencyConflict)
    assert replay == (first, False)
    assert isinstance(over_quota, QuotaExceeded)
    assert len((await store.list_jobs(JobQuery("ws"))).jobs) == 11
    assert len((await store.list_jobs(JobQuery("full"))).jobs) == 1
    assert await store.create(new_job(), idempotency=key) == (first, False)  # the refused ones changed nothing


# -- retention -----------------------------------------------------------------------------------


async def test_prune_drops_finished_jobs_past_their_retention(store: Store, clock: ManualClock) -> None:
    done_job, failed_job, live = await enqueue(store, 3)
    claimed = await store.claim("w", {"k"}, 2, lease=30)
    await store.finish([completed(claimed[0]), failed(claimed[1])])
    cancelled = (await enqueue(store))[0]
    await store.cancel(cancelled.id)
    retention = {JobStatus.COMPLETED: 60.0, JobStatus.FAILED: 600.0, JobStatus.CANCELLED: 0.0}

    clock.advance(30)
    assert await store.prune(retention) == 0
    clock.advance(60)
    assert await store.prune(retention) == 1
    assert await store.get(done_job.id) is None
    clock.advance(600)
    assert await store.prune(retention) == 1
    assert await store.get(failed_job.id) is None
    assert await store.get(cancelled.id) is not None
    assert await store.get(live.id) is not None


# -- webhooks: subscriptions and the delivery outbox --------------------------------------------

HOOK = "https://hooks.example.com/jobs"


def subscription(clock: ManualClock, workspace: str = "ws", **fields: object) -> Subscription:
    values: dict[str, object] = {"url": HOOK, "events": None, "types": None} | fields
    return Subscription(id=new_id(), workspace=workspace, created_at=clock.now(), **values)  # type: ignore[arg-type]


async def ended_with_callback(store: Store, count: int = 1, **fields: object) -> list[Job]:
    """Jobs with a callback URL, claimed and completed."""
    jobs = await enqueue(store, count, callback_url=HOOK, **fields)
    claimed = await store.claim("w", {str(fields.get("kind", "k"))}, count, lease=30)
    await store.finish([completed(job) for job in claimed])
    return jobs


async def owed(store: Store, workspace: str = "ws", job_id: str | None = None) -> list[Delivery]:
    return (await store.webhooks.deliveries(DeliveryQuery(workspace, job_id=job_id, limit=500))).deliveries


async def test_the_write_that_ends_a_job_owes_its_deliveries(store: Store, clock: ManualClock) -> None:
    every = subscription(clock, url="https://a.example.com/")
    failures = subscription(clock, url="https://b.example.com/", events=("job.failed",))
    other_kind = subscription(clock, url="https://c.example.com/", types=("other",))
    elsewhere = subscription(clock, workspace="ws-2")
    for sub in (every, failures, other_kind, elsewhere):
        await store.webhooks.subscribe(sub, "whsec_x", 25)
    (job,) = await enqueue(store, callback_url=HOOK)
    assert (await store.get(job.id)).callback_url == HOOK  # type: ignore[union-attr]
    (claimed,) = await store.claim("w", {"k"}, 1, lease=30)
    await store.report([Report(claimed.ref, 50, claimed.steps, None)], lease=30)
    assert await owed(store) == []  # nothing is owed before the job ends
    clock.advance(1)

    await store.finish([completed(claimed)])

    deliveries = await owed(store, job_id=job.id)
    assert sorted((d.url, d.subscription_id or "") for d in deliveries) == [
        ("https://a.example.com/", every.id),
        (HOOK, ""),
    ]
    for d in deliveries:
        assert (d.job_id, d.workspace, d.event, d.status, d.attempts) == (
            job.id, "ws", "job.completed", DeliveryStatus.PENDING, 0,
        )  # fmt: skip
        assert d.next_at == d.created_at == clock.now()
        assert d.last_attempt_at is d.delivered_at is d.last_error is None
    assert await owed(store, "ws-2") == []


async def test_a_retry_owes_nothing_a_cancel_and_a_rescued_last_attempt_do(store: Store, clock: ManualClock) -> None:
    retried, cancelled_job = await enqueue(store, 2, callback_url=HOOK)
    await store.claim("w", {"k"}, 1, lease=30)
    (running,) = [j for j in [await store.get(retried.id)] if j is not None]
    await store.finish([failed(running, Verdict.RETRY, retry_at=clock.now())])
    assert await owed(store) == []

    await store.cancel(cancelled_job.id)
    assert [d.event for d in await owed(store, job_id=cancelled_job.id)] == ["job.cancelled"]

    (lost,) = await enqueue(store, callback_url=HOOK, max_attempts=1)
    await store.claim("w", {"k"}, 5, lease=10)
    clock.advance(11)
    rescued = await store.rescue()
    assert lost.id in rescued.failed
    assert [d.event for d in await owed(store, job_id=lost.id)] == ["job.failed"]
    assert await owed(store, job_id=retried.id) == []  # requeued by the rescue, not ended


async def test_a_claim_leases_deliveries_and_a_lapsed_lease_frees_them(store: Store, clock: ManualClock) -> None:
    (job,) = await ended_with_callback(store)
    secret = await store.webhooks.secret("ws", "whsec_first")

    (first,) = await store.webhooks.claim(10, lease=30)
    assert (first.delivery.job_id, first.delivery.attempts, first.secret) == (job.id, 1, secret)
    assert await store.webhooks.claim(10, lease=30) == []  # held: nobody else takes it
    clock.advance(31)  # its sender died
    (again,) = await store.webhooks.claim(10, lease=30)
    assert again.delivery.id == first.delivery.id
    assert again.delivery.attempts == 2

    late = Result(first.delivery.ref, DeliveryStatus.DELIVERED, clock.now(), status_code=200)
    assert await store.webhooks.record([late]) == [False]  # the dead sender's write is fenced off
    done = Result(again.delivery.ref, DeliveryStatus.DELIVERED, clock.now(), status_code=204)
    assert await store.webhooks.record([done]) == [True]
    clock.advance(3600)
    assert await store.webhooks.claim(10, lease=30) == []
    (delivered,) = await owed(store)
    assert (delivered.status, delivered.attempts, delivered.last_status_code) == (DeliveryStatus.DELIVERED, 2, 204)
    assert delivered.delivered_at == delivered.last_attempt_at == done.at


async def test_concurrent_claims_never_share_a_delivery(store: Store) -> None:
    await ended_with_callback(store, 20)

    claims = await asyncio.gather(*(store.webhooks.claim(5, lease=30) for _ in range(6)))

    ids = [c.delivery.id for claim in claims for c in claim]
    assert len(ids) == len(set(ids)) == 20


async def test_a_failed_attempt_waits_for_its_retry_and_a_final_failure_stays(store: Store, clock: ManualClock) -> None:
    await ended_with_callback(store, 2)
    one, two = await store.webhooks.claim(10, lease=30)
    retry_at = clock.now() + timedelta(seconds=60)
    results = [
        Result(one.delivery.ref, DeliveryStatus.PENDING, clock.now(), retry_at, 500, "the receiver answered 500"),
        Result(two.delivery.ref, DeliveryStatus.FAILED, clock.now(), None, None, "refused\x00"),
    ]
    assert await store.webhooks.record(results) == [True, True]

    clock.advance(59)
    assert await store.webhooks.claim(10, lease=30) == []
    clock.advance(2)
    (retried,) = await store.webhooks.claim(10, lease=30)
    assert retried.delivery.id == one.delivery.id
    assert (retried.delivery.attempts, retried.delivery.last_status_code) == (2, 500)
    assert retried.delivery.last_error == "the receiver answered 500"
    gave_up = next(d for d in await owed(store) if d.id == two.delivery.id)
    assert (gave_up.status, gave_up.last_error, gave_up.last_status_code) == (DeliveryStatus.FAILED, "refused", None)


async def test_a_released_delivery_is_due_at_once_as_if_never_claimed(store: Store) -> None:
    await ended_with_callback(store)
    (held,) = await store.webhooks.claim(10, lease=300)

    assert await store.webhooks.release([held.delivery.ref]) == 1
    assert await store.webhooks.release([held.delivery.ref]) == 0  # the fence moved back: a second one is stale

    (again,) = await store.webhooks.claim(10, lease=300)
    assert (again.delivery.id, again.delivery.attempts) == (held.delivery.id, 1)


async def test_subscriptions_are_per_workspace_limited_and_deleting_one_ends_its_deliveries(
    store: Store, clock: ManualClock
) -> None:
    first = subscription(clock, events=("job.completed", "job.failed"), types=("k",))
    await store.webhooks.subscribe(first, "whsec_first", 2)
    clock.advance(1)
    second = subscription(clock, url="https://b.example.com/")
    await store.webhooks.subscribe(second, "whsec_second", 2)
    with pytest.raises(InvalidRequest, match="already has 2 webhooks"):
        await store.webhooks.subscribe(subscription(clock), "whsec_third", 2)
    await store.webhooks.subscribe(subscription(clock, workspace="ws-2"), "whsec_other", 2)

    assert await store.webhooks.subscriptions("ws") == [first, second]
    await ended_with_callback(store)
    claimed = {c.delivery.subscription_id: c.secret for c in await store.webhooks.claim(10, lease=30)}
    assert claimed == {first.id: "whsec_first", second.id: "whsec_second", None: None}  # no callback secret yet

    assert await store.webhooks.unsubscribe("ws-2", first.id) is None  # not that workspace's
    assert await store.webhooks.unsubscribe("ws", first.id) == first
    assert await store.webhooks.unsubscribe("ws", first.id) is None
    assert await store.webhooks.subscriptions("ws") == [second]
    ended = next(d for d in await owed(store) if d.subscription_id == first.id)
    assert (ended.status, ended.last_error) == (DeliveryStatus.FAILED, "the webhook was deleted")


async def test_a_workspace_callback_secret_is_made_once_and_replaced_on_request(store: Store) -> None:
    assert await store.webhooks.secret("ws", "whsec_a") == "whsec_a"
    assert await store.webhooks.secret("ws", "whsec_b") == "whsec_a"
    assert await store.webhooks.secret("ws-2", "whsec_c") == "whsec_c"
    assert await store.webhooks.secret("ws", "whsec_d", replace=True) == "whsec_d"
    assert await store.webhooks.secret("ws", "whsec_e") == "whsec_d"


async def test_deliveries_list_newest_first_by_pages_and_filters(store: Store, clock: ManualClock) -> None:
    jobs = []
    for _ in range(5):
        jobs += await ended_with_callback(store)
        clock.advance(1)
    await ended_with_callback(store, workspace="ws-2")
    (oldest,) = await store.webhooks.claim(1, lease=30)
    await store.webhooks.record([Result(oldest.delivery.ref, DeliveryStatus.DELIVERED, clock.now(), status_code=200)])

    seen: list[Delivery] = []
    after = None
    while True:
        page = await store.webhooks.deliveries(DeliveryQuery("ws", limit=2, after=after))
        seen += page.deliveries
        if page.next is None:
            break
        after = page.next
    assert [d.job_id for d in seen] == [job.id for job in reversed(jobs)]
    assert [d.job_id for d in await owed(store, job_id=jobs[2].id)] == [jobs[2].id]
    delivered = await store.webhooks.deliveries(DeliveryQuery("ws", status=DeliveryStatus.DELIVERED))
    assert [d.job_id for d in delivered.deliveries] == [jobs[0].id]
    assert await owed(store, "ws", job_id=(await owed(store, "ws-2"))[0].job_id) == []


async def test_a_pruned_job_takes_its_deliveries_with_it(store: Store, clock: ManualClock) -> None:
    await ended_with_callback(store)
    clock.advance(120)

    assert await store.prune({JobStatus.COMPLETED: 60.0}) == 1

    assert await owed(store) == []
    assert await store.webhooks.claim(10, lease=30) == []


# -- retry and delete (a client's control of a finished job) -----------------------------------------


async def _failed_once(store: Store, **fields: object) -> Job:
    """A job that ran once (max_attempts 1), reported progress, and failed."""
    await enqueue(store, max_attempts=1, **fields)
    (job,) = await store.claim("w", {str(fields.get("kind", "k"))}, 1, lease=30)
    running = (Step("a", "Step A", StepStatus.COMPLETED), Step("b", "Step B", StepStatus.RUNNING))
    await store.report([Report(job.ref, 60, running, "Step B")], lease=30)
    assert await store.finish([failed(job)]) == [True]
    return job


async def test_retry_queues_a_failed_job_again_as_its_next_attempt(store: Store, clock: ManualClock) -> None:
    job = await _failed_once(store)
    clock.advance(5)

    again = await store.retry(job.id, "ws", 2)

    assert again == await store.get(job.id)
    assert (again.id, again.status, again.attempt, again.max_attempts) == (job.id, JobStatus.QUEUED, 1, 3)
    assert [e.attempt for e in again.errors] == [1]
    assert (again.error, again.result, again.result_type) == (None, None, None)
    assert (again.progress, again.current_step, again.completed_at) == (0, None, None)
    assert all(step.status is StepStatus.PENDING for step in again.steps)
    assert (again.run_at, again.updated_at) == (clock.now(), clock.now())
    assert (again.worker, again.lease_expires_at) == (None, None)
    assert again.created_at == job.created_at

    (second,) = await store.claim("w", {"k"}, 1, lease=30)
    assert (second.id, second.attempt) == (job.id, 2)
    assert await store.finish([failed(second, Verdict.RETRY, retry_at=clock.now())]) == [True]
    (third,) = await store.claim("w", {"k"}, 1, lease=30)
    assert await store.finish([failed(third)]) == [True]
    final = await store.get(job.id)
    assert final is not None
    assert (final.status, final.attempt) == (JobStatus.FAILED, 3)
    assert [e.attempt for e in final.errors] == [1, 2, 3]
    assert final.error == Failure("it broke", "ValueError", 3)


async def test_retry_takes_a_cancelled_job_and_then_it_can_complete(store: Store, clock: ManualClock) -> None:
    (never_ran,) = await enqueue(store)
    await store.cancel(never_ran.id)

    again = await store.retry(never_ran.id, None, 3)

    assert (again.status, again.attempt, again.max_attempts) == (JobStatus.QUEUED, 0, 3)
    assert (again.error, again.errors, again.current_step) == (None, (), None)
    (claimed,) = await store.claim("w", {"k"}, 1, lease=30)
    assert claimed.attempt == 1
    assert await store.finish([completed(claimed, {"ok": True})]) == [True]
    done = await store.get(never_ran.id)
    assert done is not None
    assert (done.status, done.result, done.error) == (JobStatus.COMPLETED, {"ok": True}, None)


async def test_retry_refuses_jobs_that_are_not_failed_or_cancelled_and_strangers(store: Store) -> None:
    await enqueue(store, 2)
    running, done = await store.claim("w", {"k"}, 2, lease=30)
    await store.finish([completed(done, "result")])
    (queued,) = await enqueue(store)
    before = {job.id: await store.get(job.id) for job in (queued, running, done)}

    for job_id, state in ((queued.id, "is queued"), (running.id, "is running"), (done.id, "completed")):
        with pytest.raises(JobNotRetryable, match=f"Job {job_id} {state}: only a failed or cancelled job"):
            await store.retry(job_id, "ws", 3)
    failed_job = await _failed_once(store, workspace="ours", kind="other")
    with pytest.raises(JobNotFound):
        await store.retry(failed_job.id, "theirs", 3)
    with pytest.raises(JobNotFound):
        await store.retry(new_id(), None, 3)

    assert {job_id: await store.get(job_id) for job_id in before} == before
    assert (await store.get(failed_job.id)).status is JobStatus.FAILED  # type: ignore[union-attr]


async def test_racing_retries_of_one_job_make_one_new_attempt(store: Store) -> None:
    job = await _failed_once(store)

    outcomes = await asyncio.gather(*(store.retry(job.id, "ws", 1) for _ in range(8)), return_exceptions=True)

    assert len([o for o in outcomes if isinstance(o, Job)]) == 1
    assert all(isinstance(o, JobNotRetryable) for o in outcomes if not isinstance(o, Job))
    got = await store.get(job.id)
    assert got is not None
    assert (got.status, got.attempt, got.max_attempts) == (JobStatus.QUEUED, 1, 2)


async def test_a_retry_is_a_status_event_and_owes_deliveries_again_when_the_job_ends(
    store: Store, clock: ManualClock
) -> None:
    job = await _failed_once(store, callback_url=HOOK)
    (mark,) = await store.recent_events(1)
    assert [d.event for d in await owed(store, job_id=job.id)] == ["job.failed"]
    clock.advance(1)

    await store.retry(job.id, "ws", 1)

    (event,) = await store.events(mark, job_id=job.id)
    assert (event.change, event.status, event.attempt, event.progress) == ("status", JobStatus.QUEUED, 1, 0)
    assert event.current_step is None
    assert [d.event for d in await owed(store, job_id=job.id)] == ["job.failed"]  # nothing owed for the retry
    (again,) = await store.claim("w", {"k"}, 1, lease=30)
    await store.finish([completed(again)])
    assert sorted(d.event for d in await owed(store, job_id=job.id)) == ["job.completed", "job.failed"]


async def test_delete_removes_a_finished_job_its_events_and_its_deliveries(store: Store, clock: ManualClock) -> None:
    await store.webhooks.subscribe(subscription(clock), "whsec_x", 25)
    (done,) = await ended_with_callback(store)
    failed_job = await _failed_once(store)
    (cancelled_job,) = await enqueue(store)
    await store.cancel(cancelled_job.id)
    (kept,) = await ended_with_callback(store)
    assert len(await owed(store, job_id=done.id)) == 2

    for job in (done, failed_job, cancelled_job):
        gone = await store.delete(job.id, "ws")
        assert (gone.id, gone.is_terminal) == (job.id, True)
        assert await store.get(job.id) is None
        assert await store.events(0, job_id=job.id) == []
        assert await owed(store, job_id=job.id) == []
        with pytest.raises(JobNotFound):
            await store.delete(job.id, "ws")

    listed = await store.list_jobs(JobQuery("ws"))
    assert [job.id for job in listed.jobs] == [kept.id]
    assert await store.events(0, job_id=kept.id) != []
    assert len(await owed(store, job_id=kept.id)) == 2
    claimed = await store.webhooks.claim(10, lease=30)
    assert {c.delivery.job_id for c in claimed} == {kept.id}


async def test_delete_refuses_active_jobs_and_strangers_and_changes_nothing(store: Store) -> None:
    await enqueue(store)
    (running,) = await store.claim("w", {"k"}, 1, lease=30)
    (queued,) = await enqueue(store)
    before = {job.id: await store.get(job.id) for job in (queued, running)}

    for job_id, status in ((queued.id, "queued"), (running.id, "running")):
        with pytest.raises(JobNotFinished, match=f"Job {job_id} is {status}: .*cancel it first"):
            await store.delete(job_id, "ws")
    done = await _failed_once(store, workspace="ours", kind="other")
    with pytest.raises(JobNotFound):
        await store.delete(done.id, "theirs")
    with pytest.raises(JobNotFound):
        await store.delete(new_id())

    assert {job_id: await store.get(job_id) for job_id in before} == before
    assert await store.get(done.id) is not None


async def test_a_retry_and_a_delete_at_once_one_wins(store: Store) -> None:
    job = await _failed_once(store)

    retry, delete = await asyncio.gather(
        store.retry(job.id, "ws", 1), store.delete(job.id, "ws"), return_exceptions=True
    )

    if isinstance(retry, Job):  # the retry went first: the job is queued, so the delete is refused
        assert isinstance(delete, JobNotFinished)
        assert (await store.get(job.id)).status is JobStatus.QUEUED  # type: ignore[union-attr]
    else:  # the delete went first: nothing is left to retry
        assert isinstance(retry, JobNotFound)
        assert isinstance(delete, Job)
        assert await store.get(job.id) is None


async def test_an_idempotency_key_that_named_a_deleted_job_makes_a_new_one(store: Store) -> None:
    key = Idempotency("key-1", "fingerprint")
    first, made = await store.create(new_job(), idempotency=key)
    assert made
    (claimed,) = await store.claim("w", {"k"}, 1, lease=30)
    await store.finish([completed(claimed)])
    await store.delete(first.id, "ws")

    second, made = await store.create(new_job(), idempotency=key)

    assert made
    assert second.id != first.id
    again, made = await store.create(new_job(), idempotency=key)
    assert (again.id, made) == (second.id, False)
