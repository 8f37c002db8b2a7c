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

PREFIX = "/api/v1/run"


async def _submit(
    request: Request, workspace: str, kind: str, input: Any = None, body: Any = None, callback: str | None = None
) -> Response:
    key, fingerprint = params.idempotency(request, body)
    rt = params.runtime(request)
    callback_url = None if callback is None else rt.webhooks.check(callback)
    job, created = await rt.service.submit(
        workspace, kind, input=input, idempotency_key=key, fingerprint=fingerprint, callback_url=callback_url
    )
    return accepted(run_job(job, rt.disclosure), f"{PREFIX}/jobs/{job.id}", created)


async def create_search(request: Request) -> Response:
    workspace = await params.workspace(request)
    body = await params.json_body(request)
    wanted, callback = without_callback(body)
    selector = params.runtime(request).searcher.selector(wanted)
    return await _submit(request, workspace, SEARCH_KIND, selector.model_dump(exclude_none=True), body, callback)


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
    wanted, callback = without_callback(options)
    return await _submit(request, workspace, SYNC_KIND, {**wanted, "source": source.id}, options, callback)


async def sync_all_sources(request: Request) -> Response:
    workspace = await params.workspace(request)
    options = await _sync_options(request)
    wanted, callback = without_callback(options)
    return await _submit(request, workspace, SYNC_KIND, wanted, options, callback)


routes = [
    Route(f"{PREFIX}/search/jobs", create_search, methods=["POST"]),
    Route(f"{PREFIX}/search", search, methods=["POST"]),
    Route(f"{PREFIX}/jobs/{{job_id}}", get_job, methods=["GET"]),
    Route(f"{PREFIX}/jobs/{{job_id}}/cancel", cancel_job, methods=["POST"]),
    Route(f"{PREFIX}/sources", list_sources, methods=["GET"]),
    Route(f"{PREFIX}/sources/sync", sync_all_sources, methods=["POST"]),
    Route(f"{PREFIX}/sources/{{source_id}}/sync", sync_source, methods=["POST"]),
]
