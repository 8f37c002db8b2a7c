"""The web dashboard at ``/ui``: a few static files (`jobhouse/ui/`), served as they are.

The page itself needs no key (it holds no data); the API calls it makes carry the key the person
signs in with. Every answer carries a strict Content-Security-Policy: scripts, styles and
connections from this origin only, nothing inline, no frames, no forms posted anywhere.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobhouse.api.errors import envelope

PREFIX = "/ui"
#: Sent with every ``/ui`` answer (beside the server's security headers).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


def load() -> dict[str, tuple[bytes, str]]:
    """The dashboard's files by name, with their content types, read once."""
    files: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("jobhouse.ui").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in TYPES:
            files[entry.name] = (entry.read_bytes(), TYPES[suffix])
    return files


def ui_routes() -> list[Route]:
    """``GET /ui`` (the page) and ``GET /ui/{name}`` (its scripts and styles)."""
    files = load()
    headers = {"Content-Security-Policy": CSP}

    def answer(name: str) -> Response:
        found = files.get(name)
        if found is None:
            return envelope(404, "Not Found", "NOT_FOUND")
        body, media_type = found
        return Response(body, media_type=media_type, headers=headers)

    async def page(request: Request) -> Response:
        return answer("index.html")

    async def asset(request: Request) -> Response:
        return answer(request.path_params["name"])

    return [
        Route(PREFIX, page, methods=["GET"], include_in_schema=False),
        Route(f"{PREFIX}/{{name}}", asset, methods=["GET"], include_in_schema=False),
    ]
