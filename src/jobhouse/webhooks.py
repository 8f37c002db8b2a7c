"""Webhooks: a job's end, POSTed to its callback URL and to its workspace's subscriptions.

How a delivery travels (``docs/webhooks.md`` has the receiver's side)::

    job ends ──(same transaction: a trigger of migration 0008)──▶ outbox row, pending, due now
    Sender (every serve/worker process) ──claim (lease)──▶ POST, signed ──▶ 2xx: delivered
                                                               └─ else: due again after a backoff,
                                                                  or failed (attempts or age spent)

- The outbox row is written by the store in the transaction that ends the job, so an ended job
  always owes its deliveries, whatever crashes next. A sender claims due rows with a lease; one
  that dies leaves them due again when the lease passes, and another process sends them. So a
  delivery may arrive more than once (always with the same ``Jobhouse-Delivery`` id), never zero
  times while attempts remain.
- The URL is checked against `webhook_hosts` when given and again before each attempt, with the
  addresses its host resolves to (`jobhouse.egress`); the POST goes to the checked address, with a
  short timeout, no redirects, no proxy, and no reused connection.
- The body is the job as the workspace surface shows it (`job_view`: the same fields as
  ``GET /api/jobs/{id}``), wrapped as ``{"id", "event", "createdAt", "job"}``. It is signed like
  Stripe's webhooks: ``Jobhouse-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
- Secrets: a subscription has its own (shown once, at creation); a job's callback is signed with its
  workspace's callback secret, made on first use. They are never logged.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from jobhouse import __version__
from jobhouse.aio import relay, wait
from jobhouse.disclosure import PLAIN, Disclosure
from jobhouse.egress import HostPolicy
from jobhouse.errors import InvalidRequest, StoreUnavailable, WebhookNotFound, WebhookRefused
from jobhouse.ids import new_id
from jobhouse.job import Failure, Job, JobStatus
from jobhouse.retry import STORE_RETRY, Backoff

if TYPE_CHECKING:
    import httpx  # loaded where webhooks are sent: a process that sends none never needs it

    from jobhouse.hub import Hub
    from jobhouse.store.base import DeliveryPage, DeliveryQuery, Store

log = logging.getLogger(__name__)

#: The events a webhook can receive: one per terminal status.
EVENTS = ("job.completed", "job.failed", "job.cancelled")
#: The most subscriptions one workspace may have.
MAX_SUBSCRIPTIONS = 25
#: Deliveries one sender claims at a time (and sends at once).
BATCH = 32
#: After a wake-up, how long a sender lets other ends gather before it claims.
GAP = 0.02
SECRET_PREFIX = "whsec_"
#: Retries: 10 s after the first failed attempt, doubling up to an hour (±25%).
RETRIES = Backoff(base=10.0, cap=3600.0)
#: Statuses as the workspace surface names them (a cancelled job reads as failed there).
_SHOWN_STATUS = {
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "failed",
}


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A workspace's standing order: POST every matching job end to `url` (its secret is kept apart)."""

    id: str
    workspace: str
    url: str
    events: tuple[str, ...] | None  # None: every event
    types: tuple[str, ...] | None  # None: every kind
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRef:
    """One attempt at one delivery: the fence of a sender's writes (as `AttemptRef` is for workers)."""

    id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST owed for one job end: to the job's callback (`subscription_id` None) or a subscription."""

    id: str
    job_id: str
    workspace: str
    subscription_id: str | None
    url: str
    event: str
    status: DeliveryStatus
    attempts: int
    next_at: datetime
    created_at: datetime
    last_status_code: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def ref(self) -> DeliveryRef:
        return DeliveryRef(self.id, self.attempts)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a sender holds, and the secret that signs it (None: the workspace has none yet)."""

    delivery: Delivery
    secret: str | None


@dataclass(frozen=True, slots=True)
class Result:
    """How an attempt went: delivered, due again at `next_at`, or failed for good."""

    ref: DeliveryRef
    status: DeliveryStatus
    at: datetime
    next_at: datetime | None = None
    status_code: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """How deliveries are sent and retried (from the `webhook_*` settings)."""

    timeout: float = 5.0
    lease: float = 30.0
    backoff: Backoff = RETRIES
    max_attempts: int = 16
    max_age: float = 24 * 3600.0
    poll_interval: float = 1.0


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Jobhouse-Signature`` header of `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def millis(moment: datetime | None) -> str | None:
    """``2024-01-01T00:00:00.000Z``, as the workspace surface writes times."""
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:23] + "Z" if moment.microsecond else text[:19] + ".000Z"


def job_view(job: Job, shown: Disclosure) -> dict[str, Any]:
    """The job as the workspace surface shows it (``GET /api/jobs/{id}``), field for field."""

    def error(failure: Failure, **more: Any) -> dict[str, Any]:
        message, traceback = shown.shown(failure, job.kind)
        seen = more | {"message": message, "type": failure.type}
        return seen if traceback is None else seen | {"traceback": traceback}

    def attempt_error(failure: Failure) -> dict[str, Any]:
        return error(failure, attempt=failure.attempt) | {"at": millis(failure.at)}

    return {
        "id": job.id,
        "workspaceId": job.workspace,
        "competitorId": job.subject,
        "type": job.kind,
        "displayTitle": job.title,
        "status": _SHOWN_STATUS[job.status],
        "progress": job.progress,
        "currentStep": job.current_step,
        "steps": [step.to_dict() for step in job.steps],
        "startedAt": millis(job.started_at),
        "completedAt": millis(job.completed_at),
        "metadata": job.metadata,
        "createdAt": millis(job.created_at),
        "updatedAt": millis(job.updated_at),
        "input": job.input,
        "result": job.result,
        "resultType": job.result_type,
        "error": None if job.error is None else error(job.error),
        "attempt": job.attempt,
        "maxAttempts": job.max_attempts,
        "errors": [attempt_error(failure) for failure in job.errors],
        "priority": job.priority,
        "scheduledAt": millis(job.scheduled_at),
    }


def payload(delivery: Delivery, job: Job, shown: Disclosure) -> bytes:
    """The body of `delivery`: the same bytes on every attempt."""
    body = {"id": delivery.id, "event": delivery.event, "createdAt": millis(delivery.created_at)}
    return orjson.dumps({**body, "job": job_view(job, shown)})


class Webhooks:
    """What clients can do with webhooks (subscribe, list, delete, read the delivery log), and the
    check of every URL a client gives (`check`)."""

    def __init__(self, store: Store, policy: HostPolicy) -> None:
        self.store = store
        self.policy = policy

    def check(self, url: str) -> str:
        """The URL as it will be stored, if the server allows it; `WebhookRefused` naming why not."""
        return str(self.policy.check(url).url)

    async def subscribe(
        self, workspace: str, url: str, events: Sequence[str] | None = None, types: Sequence[str] | None = None
    ) -> tuple[Subscription, str]:
        """A new subscription of `workspace`, and its secret (shown this once)."""
        if events is not None:
            wrong = [event for event in events if event not in EVENTS]
            if wrong or not events:
                raise InvalidRequest(f"Invalid events: each must be one of {', '.join(EVENTS)} (and at least one)")
        if types is not None and not types:
            raise InvalidRequest("Invalid types: leave it out for every type, or name at least one")
        subscription = Subscription(
            id=new_id(),
            workspace=workspace,
            url=self.check(url),
            events=None if events is None else tuple(dict.fromkeys(events)),
            types=None if types is None else tuple(dict.fromkeys(types)),
            created_at=self.store.clock.now(),
        )
        secret = new_secret()
        await self.store.webhooks.subscribe(subscription, secret, MAX_SUBSCRIPTIONS)
        return subscription, secret

    async def subscriptions(self, workspace: str) -> list[Subscription]:
        return await self.store.webhooks.subscriptions(workspace)

    async def unsubscribe(self, workspace: str, subscription_id: str) -> Subscription:
        found = await self.store.webhooks.unsubscribe(workspace, subscription_id)
        if found is None:
            raise WebhookNotFound()
        return found

    async def secret(self, workspace: str, *, rotate: bool = False) -> str:
        """The secret that signs `workspace`'s job callbacks (made on first use; a new one with `rotate`)."""
        return await self.store.webhooks.secret(workspace, new_secret(), replace=rotate)

    async def deliveries(self, query: DeliveryQuery) -> DeliveryPage:
        return await self.store.webhooks.deliveries(query)


class Sender:
    """The background service that sends what the outbox owes (see the module's docstring).

    Woken by the hub whenever jobs change (here or, through the store's signals, elsewhere), and
    every `poll_interval` seconds otherwise, when deliveries waiting out a backoff fall due.
    """

    def __init__(
        self, store: Store, hub: Hub, policy: HostPolicy, options: WebhookOptions, shown: Disclosure | None = None
    ) -> None:
        # httpx loads here, before the process runs anything: an import inside `run` would hold up
        # the event loop (and the heartbeats of the jobs it runs) while the worker is at work.
        import httpx

        self.store = store
        self.hub = hub
        self.policy = policy
        self.options = options
        self.shown = shown or PLAIN
        self._limits = httpx.Limits(max_keepalive_connections=0)  # a connection is bound to the address checked

    async def run(self, stop: asyncio.Event) -> None:
        import httpx  # loaded by __init__ already

        async with httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=self.options.timeout, limits=self._limits
        ) as http:
            with self.hub.change_waiter() as changed:
                waker = asyncio.create_task(relay(stop, changed))
                try:
                    await self._loop(http, stop, changed)
                finally:
                    waker.cancel()

    async def _loop(self, http: httpx.AsyncClient, stop: asyncio.Event, changed: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            changed.clear()
            try:
                claimed = await self.round(http, stop)
                failures = 0
            except StoreUnavailable as exc:
                failures += 1
                pause = STORE_RETRY.delay(failures)
                log.warning("claiming webhook deliveries failed (%s); retrying in %.1fs", exc, pause)
                await wait(stop, pause)
                continue
            if claimed < BATCH:
                await wait(changed, self.options.poll_interval)
                await wait(stop, GAP)

    async def round(self, http: httpx.AsyncClient, stop: asyncio.Event | None = None) -> int:
        """Claim the deliveries due now and send them; the number claimed. On `stop`, the sends in
        flight are abandoned and their deliveries handed back, due at once."""
        claimed = await self.store.webhooks.claim(BATCH, self.options.lease)
        if not claimed:
            return 0
        jobs = await self.store.jobs({c.delivery.job_id for c in claimed})
        sends = {asyncio.create_task(self._deliver(http, c, jobs.get(c.delivery.job_id))): c for c in claimed}
        stopping = asyncio.create_task((stop or asyncio.Event()).wait())
        try:
            pending = set(sends)
            while pending:
                done, _ = await asyncio.wait({*pending, stopping}, return_when=asyncio.FIRST_COMPLETED)
                pending -= done
                if stopping in done:
                    break
        finally:
            stopping.cancel()
        unfinished = [task for task in sends if not task.done()]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if unfinished:
            try:
                await self.store.webhooks.release([sends[task].delivery.ref for task in unfinished])
            except StoreUnavailable as exc:  # they fall due again when their lease ends
                log.warning("handing back %d webhook deliveries failed: %s", len(unfinished), exc)
        return len(claimed)

    async def _deliver(self, http: httpx.AsyncClient, claimed: Claimed, job: Job | None) -> None:
        delivery = claimed.delivery
        try:
            result = await self._attempt(http, claimed, job)
            (written,) = await self.store.webhooks.record([result])
        except StoreUnavailable as exc:  # it falls due again when its lease ends
            log.warning("webhook delivery %s: the store is unavailable (%s); it will be sent again", delivery.id, exc)
            return
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly; it will be sent again", delivery.id)
            return
        host = _host(delivery.url)
        if result.status is DeliveryStatus.DELIVERED:
            log.info("webhook %s (%s) delivered to %s", delivery.id, delivery.event, host)
        elif written:
            log.warning(
                "webhook %s to %s: attempt %d failed (%s)%s",
                delivery.id,
                host,
                delivery.attempts,
                result.error,
                "; giving up" if result.status is DeliveryStatus.FAILED else "",
            )

    async def _attempt(self, http: httpx.AsyncClient, claimed: Claimed, job: Job | None) -> Result:
        """One POST of a claimed delivery, and how it went."""
        import httpx

        delivery = claimed.delivery
        if job is None:
            return self._failed(delivery, None, "the job no longer exists", permanent=True)
        try:
            target = self.policy.check(delivery.url)
            address = await self.policy.resolve(target)
        except WebhookRefused as exc:
            return self._failed(delivery, None, exc.message, permanent=True)
        except OSError as exc:
            return self._failed(delivery, None, f"cannot resolve the host: {exc}")
        if claimed.secret is None and delivery.subscription_id is not None:
            return self._failed(delivery, None, "the webhook was deleted", permanent=True)
        secret = claimed.secret or await self.store.webhooks.secret(delivery.workspace, new_secret())
        body = payload(delivery, job, self.shown)
        timestamp = int(self.store.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"jobhouse-webhooks/{__version__}",
            "Host": target.url.netloc.decode("ascii"),
            "Jobhouse-Event": delivery.event,
            "Jobhouse-Delivery": delivery.id,
            "Jobhouse-Signature": signature(secret, timestamp, body),
        }
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        request = http.build_request(
            "POST", target.url.copy_with(host=str(address)), content=body, headers=headers, extensions=extensions
        )
        try:
            async with asyncio.timeout(self.options.timeout):
                response = await http.send(request, stream=True)
                await response.aclose()  # the status is all that counts: the body is not read
        except TimeoutError:
            return self._failed(delivery, None, f"no answer within {self.options.timeout:g}s")
        except (httpx.HTTPError, OSError) as exc:
            return self._failed(delivery, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if 200 <= response.status_code < 300:
            now = self.store.clock.now()
            return Result(delivery.ref, DeliveryStatus.DELIVERED, now, status_code=response.status_code)
        return self._failed(delivery, response.status_code, f"the receiver answered {response.status_code}")

    def _failed(self, delivery: Delivery, status_code: int | None, error: str, *, permanent: bool = False) -> Result:
        """A failed attempt: due again after a backoff, or failed for good once attempts or age are spent."""
        now = self.store.clock.now()
        spent = delivery.attempts >= self.options.max_attempts
        old = now - delivery.created_at >= timedelta(seconds=self.options.max_age)
        if permanent or spent or old:
            return Result(delivery.ref, DeliveryStatus.FAILED, now, None, status_code, error)
        retry_at = now + timedelta(seconds=self.options.backoff.delay(delivery.attempts))
        return Result(delivery.ref, DeliveryStatus.PENDING, now, retry_at, status_code, error)


def _host(url: str) -> str:
    """What logs name of a receiver: its host, never the whole URL (its query may hold a token)."""
    import httpx

    try:
        return httpx.URL(url).host or "?"
    except (httpx.InvalidURL, TypeError, ValueError):
        return "?"
