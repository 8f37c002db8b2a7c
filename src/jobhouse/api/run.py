"""The run surface, ``/api/v1/run``: candidate searches as jobs, their status, and sources."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobhouse.api import params
from jobhouse.api.responses import accepted, json_response
from jobhouse.api.views import run_job, search_response, source_list
from jobhouse.api.webhooks import without_callback
from jobhouse.builtin import SEARCH_KIND, SYNC_KIND
from jobhouse.errors import InvalidRequest
from jobhouse.schedule import parse_time, start_at

PREFIX = "/api/v1/run"


#: What a create body may say of when and how soon its job runs, besides what the job is about.
_CONTROL = ("run_at", "delay_ms", "priority")


def _control(body: Any) -> tuple[Any, dict[str, Any]]:
    """A create body without its `_CONTROL` fields, and those fields (see ``docs/job-control.md``)."""
    if not isinstance(body, dict) or not any(name in body for name in _CONTROL):
        return body, {}
    control = {name: body[name] for name in _CONTROL if body.get(name) is not None}
    rest = {name: value for name, value in body.items() if name not in _CONTROL}
    for name in ("delay_ms", "priority"):
        if name in control and (not isinstance(control[name], int) or isinstance(control[name], bool)):
            raise InvalidRequest(f"Invalid request: {name}: must be an integer")
    if "run_at" in control:
        control["run_at"] = parse_time(control["run_at"], "run_at")
    return rest, control


async def _submit(
    request: Request,
    workspace: str,
    kind: str,
    input: Any = None,
    body: Any = None,
    callback: str | None = None,
    control: dict[str, Any] | None = None,
) -> Response:
    key, fingerprint = params.idempotency(request, body)
    rt = params.runtime(request)
    callback_url = None if callback is None else rt.webhooks.check(callback)
    control = control or {}
    run_at = start_at(
        rt.store.clock.now(), control.get("run_at"), control.get("delay_ms"), names=("run_at", "delay_ms")
    )
    priority = control.get("priority")
    new = rt.queue.new_job(
        kind, workspace=workspace, input=input, callback_url=callback_url, priority=priority, run_at=run_at
    )
    job, created = await rt.service.submit(new, idempotency_key=key, fingerprint=fingerprint)
    return accepted(run_job(job, rt.disclosure), f"{PREFIX}/jobs/{job.id}", created)


async def create_search(request: Request) -> Response:
    workspace = await params.workspace(request)
    body = await params.json_body(request)
    wanted, control = _control(body)
    wanted, callback = without_callback(wanted)
    selector = params.runtime(request).searcher.selector(wanted)
    search = selector.model_dump(exclude_none=True)
    return await _submit(request, workspace, SEARCH_KIND, search, body, callback, control)


async def get_job(request: Request) -> Response:
    workspace = await params.workspace(request)
    timeout = params.wait_timeout(request)
    rt = params.runtime(request)
    job = await rt.service.wait(params.job_id(request, "job_id"), workspace, timeout, params.owner(request))
    return json_response(run_job(job, rt.disclosure))


async def cancel_job(request: Request) -> Response:
    workspace = await params.workspace(request)
    rt = params.runtime(request)
    job = await rt.service.cancel(params.job_id(request, "job_id"), workspace)
    return json_response(run_job(job, rt.disclosure))


async def search(request: Request) -> Response:
    await params.workspace(request)
    rt = params.runtime(request)
    selector = rt.searcher.selector(await params.json_body(request))
    return json_response(search_response(await rt.searcher.search(selector)))


async def list_sources(request: Request) -> Response:
    await params.workspace(request)
    states = await params.runtime(request).searcher.states()
    return json_response(source_list(states))


async def _sync_options(request: Request) -> dict[str, Any]:
    """An optional body: ``{"force": true}`` reads sources again even if their files did not change."""
    return await params.optional_json_object(request, "sync options")


async def sync_source(request: Request) -> Response:
    workspace = await params.workspace(request)
    source = params.runtime(request).searcher.source(request.path_params["source_id"])
    options = await _sync_options(request)
    wanted, control = _control(options)
    wanted, callback = without_callback(wanted)
    return await _submit(request, workspace, SYNC_KIND, {**wanted, "source": source.id}, options, callback, control)


async def sync_all_sources(request: Request) -> Response:
    workspace = await params.workspace(request)
    options = await _sync_options(request)
    wanted, control = _control(options)
    wanted, callback = without_callback(wanted)
    return await _submit(request, workspace, SYNC_KIND, wanted, options, callback, control)


routes = [
    Route(f"{PREFIX}/search/jobs", create_search, methods=["POST"]),
    Route(f"{PREFIX}/search", search, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}", get_job, methods=["GET"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/cancel", cancel_job, methods=["POST"]),
    Route(f"{PREFIX}/sources", list_sources, methods=["GET"]),
    Route(f"{PREFIX}/sources/sync", sync_all_sources, methods=["POST"]),
    Route(f"{PREFIX}/sources/{{source_id}}/sync", sync_source, methods=["POST"]),
]
