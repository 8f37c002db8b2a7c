"""Webhooks over HTTP, on the workspace surface (camelCase): subscriptions, the callback secret,
and the delivery log. Another workspace's subscriptions and deliveries are 404s, like its jobs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobhouse.api import models, params
from jobhouse.api.responses import json_response
from jobhouse.egress import URL_MAX
from jobhouse.errors import InvalidRequest, UnknownKind, WebhookNotFound
from jobhouse.ids import parse_id
from jobhouse.store.base import DeliveryQuery
from jobhouse.validation import validate
from jobhouse.webhooks import Delivery, DeliveryStatus, Subscription, millis

PREFIX = "/api/webhooks"
STATUSES = tuple(status.value for status in DeliveryStatus)


class CreateWebhook(BaseModel):
    """Body of ``POST /api/webhooks``."""

    model_config = ConfigDict(extra="forbid", title="CreateWebhook")

    url: str = Field(min_length=1, max_length=URL_MAX, description="http(s) URL on a host the server allows")
    events: list[Literal["job.completed", "job.failed", "job.cancelled"]] | None = Field(
        default=None, min_length=1, max_length=3, description="Only these events; absent: every event"
    )
    types: list[str] | None = Field(
        default=None, min_length=1, max_length=50, description="Only jobs of these types; absent: every type"
    )


def without_callback(body: Any, name: str = "callback_url") -> tuple[Any, str | None]:
    """A run-surface create body without its callback URL (`name`), and the URL: checked here for its
    type and length only (`jobhouse.webhooks.Webhooks.check` decides whether its host may be called)."""
    if not isinstance(body, dict) or name not in body:
        return body, None
    rest = {key: value for key, value in body.items() if key != name}
    value = body[name]
    if value is None:
        return rest, None
    if not isinstance(value, str) or not 0 < len(value) <= URL_MAX:
        raise InvalidRequest(f"Invalid request: {name}: must be a URL of 1-{URL_MAX} characters")
    return rest, value


def webhook_view(subscription: Subscription) -> models.Webhook:
    return models.Webhook.of(
        id=subscription.id,
        url=subscription.url,
        events=None if subscription.events is None else list(subscription.events),
        types=None if subscription.types is None else list(subscription.types),
        createdAt=millis(subscription.created_at),
    )


def delivery_view(delivery: Delivery) -> models.Delivery:
    pending = delivery.status is DeliveryStatus.PENDING
    return models.Delivery.of(
        id=delivery.id,
        jobId=delivery.job_id,
        webhookId=delivery.subscription_id,
        url=delivery.url,
        event=delivery.event,
        status=delivery.status.value,
        attempts=delivery.attempts,
        nextAttemptAt=millis(delivery.next_at) if pending else None,
        lastAttemptAt=millis(delivery.last_attempt_at),
        lastStatusCode=delivery.last_status_code,
        lastError=delivery.last_error,
        createdAt=millis(delivery.created_at),
        deliveredAt=millis(delivery.delivered_at),
    )


async def create_webhook(request: Request) -> Response:
    workspace = await params.workspace(request)
    body = validate(CreateWebhook, await params.json_body(request), "Invalid request")
    rt = params.runtime(request)
    unknown = [kind for kind in body.types or () if kind not in rt.registry]
    if unknown:
        raise UnknownKind(f"Unknown job type: {unknown[0]!r}")
    subscription, secret = await rt.webhooks.subscribe(workspace, body.url, body.events, body.types)
    created = models.WebhookCreated.of(webhook=webhook_view(subscription), secret=secret)
    return json_response(created, 201, {"Location": f"{PREFIX}/{subscription.id}"})


async def list_webhooks(request: Request) -> Response:
    workspace = await params.workspace(request)
    found = await params.runtime(request).webhooks.subscriptions(workspace)
    return json_response(models.WebhookList.of(webhooks=[webhook_view(s) for s in found]))


async def webhooks(request: Request) -> Response:
    return await (create_webhook(request) if request.method == "POST" else list_webhooks(request))


def _webhook_id(request: Request) -> str:
    canonical = parse_id(request.path_params["id"])
    if canonical is None:
        raise WebhookNotFound()
    return canonical


async def get_webhook(request: Request) -> Response:
    workspace = await params.workspace(request)
    webhook_id = _webhook_id(request)
    found = await params.runtime(request).webhooks.subscriptions(workspace)
    subscription = next((s for s in found if s.id == webhook_id), None)
    if subscription is None:
        raise WebhookNotFound()
    return json_response(models.WebhookResponse.of(webhook=webhook_view(subscription)))


async def delete_webhook(request: Request) -> Response:
    workspace = await params.workspace(request)
    subscription = await params.runtime(request).webhooks.unsubscribe(workspace, _webhook_id(request))
    return json_response(models.WebhookDeleted.of(success=True, webhook=webhook_view(subscription)))


async def webhook(request: Request) -> Response:
    return await (delete_webhook(request) if request.method == "DELETE" else get_webhook(request))


async def secret(request: Request) -> Response:
    """GET: the workspace's callback secret (made on first use); POST: a new one replaces it."""
    workspace = await params.workspace(request)
    value = await params.runtime(request).webhooks.secret(workspace, rotate=request.method == "POST")
    return json_response(models.WebhookSecret.of(secret=value))


def _query(request: Request, workspace: str, job_id: str | None) -> DeliveryQuery:
    status = params.text(request, "status")
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"Invalid status: must be one of {', '.join(STATUSES)}")
    webhook_id = params.text(request, "webhookId")
    subscription_id = None if webhook_id is None else parse_id(webhook_id)
    if webhook_id is not None and subscription_id is None:
        raise InvalidRequest("Invalid webhookId: must be a webhook's id (a UUID)")
    return DeliveryQuery(
        workspace=workspace,
        job_id=job_id,
        subscription_id=subscription_id,
        status=None if status is None else DeliveryStatus(status),
        limit=params.integer(request, "limit", 50, 1, 500),
        after=params.decode_cursor(request),
    )


async def _page(request: Request, query: DeliveryQuery) -> Response:
    page = await params.runtime(request).webhooks.deliveries(query)
    deliveries = [delivery_view(d) for d in page.deliveries]
    return json_response(models.DeliveryPage.of(deliveries=deliveries, nextCursor=params.encode_cursor(page.next)))


async def list_deliveries(request: Request) -> Response:
    workspace = await params.workspace(request)
    given = params.text(request, "jobId")
    job_id = None if given is None else parse_id(given)
    if given is not None and job_id is None:
        raise InvalidRequest("Invalid jobId: must be a job's id (a UUID)")
    return await _page(request, _query(request, workspace, job_id))


async def job_deliveries(request: Request) -> Response:
    workspace = await params.workspace(request)
    job = await params.runtime(request).service.get(params.job_id(request, "id"), workspace)  # 404 if not ours
    return await _page(request, _query(request, workspace, job.id))


routes = [
    Route(PREFIX, webhooks, methods=["GET", "POST"]),
    Route(f"{PREFIX}/deliveries", list_deliveries, methods=["GET"]),
    Route(f"{PREFIX}/secret", secret, methods=["GET", "POST"]),
    Route(f"{PREFIX}/{{id}}", webhook, methods=["GET", "DELETE"]),
    Route("/api/jobs/{id}/deliveries", job_deliveries, methods=["GET"]),
]
