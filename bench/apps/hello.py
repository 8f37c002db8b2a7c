"""The HTTP ceiling: one Starlette route returning a small JSON body, on jobhouse's own server stack.

uvicorn with uvloop and httptools (what `jobhouse serve` runs on), no access log, no lifespan, no
server header: what this process answers per second is what the stack can do on this machine
before jobhouse adds anything. ``python -m bench.apps.hello --port N`` serves ``GET /hello``.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BODY = {"status": "ok", "hello": "world"}


async def hello(request: Request) -> JSONResponse:
    return JSONResponse(BODY)


app = Starlette(routes=[Route("/hello", hello)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.apps.hello", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
        server_header=False,
    )


if __name__ == "__main__":
    main()
