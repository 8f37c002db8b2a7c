"""Logging: one handler on stderr for jobhouse's and uvicorn's loggers, as readable text or JSON lines,
each line saying which job and which request it is about, and never a key.

- **Formats** (`Settings.log_format`). ``text``, the default, is ``time level logger: message``
  followed by `` job=… kind=… workspace=… attempt=… request=…`` for what is known, and a traceback
  on the lines below when there is one. ``json`` is one JSON object a line: ``time``, ``level``,
  ``logger``, ``message``, then ``job_id``, ``kind``, ``workspace``, ``attempt``, ``request_id``
  when known and ``traceback`` when there is one.
- **Context.** The worker binds the job around each attempt (`bind_job`), in the attempt's own
  task, so every line logged while it runs carries it: the worker's, the attempt runner's, and the
  handler's own (threads of plain-function handlers run in a copy of that context). The HTTP layer
  binds each request's id (`bind_request`, in `jobhouse.api.dispatch`).
- **Redaction.** Every line, traceback included, is searched for anything shaped like a jobhouse
  API key (``jh_<key id>_<secret>``) and the secret is replaced by ``[redacted]`` before it is
  written: a backstop, since nothing in jobhouse logs a key on purpose.

Nothing here is global but the logging module's own tree (which `configure` sets up once per
process, for the command being run) and the context variables (per task, by design).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import orjson

if TYPE_CHECKING:
    from jobhouse.job import Job
    from jobhouse.settings import Settings

__all__ = ["FORMATS", "bind_job", "bind_request", "configure", "context", "redact", "unbind_job"]

#: The values `Settings.log_format` takes.
FORMATS = ("text", "json")
#: uvicorn's loggers, sent through jobhouse's handler rather than their own.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

#: The attempt being run in this context: (job id, kind, workspace, attempt).
_job: contextvars.ContextVar[tuple[str, str, str, int] | None] = contextvars.ContextVar("jobhouse_job", default=None)
#: The HTTP request being answered in this context.
_request: contextvars.ContextVar[str | None] = contextvars.ContextVar("jobhouse_request", default=None)

#: A jobhouse key (see `jobhouse.keys`), also a malformed or cut one: the key id, then what follows.
_KEY = re.compile(r"jh_([A-Za-z0-9]{1,32})_[A-Za-z0-9_-]{4,}")


def bind_job(job: Job, attempt: int | None = None) -> contextvars.Token[tuple[str, str, str, int] | None]:
    """Tag what this context logs from now on with `job`'s id, kind, workspace and attempt (`attempt`,
    else the job's current one); the token undoes it."""
    return _job.set((job.id, job.kind, job.workspace, job.attempt if attempt is None else attempt))


def unbind_job(token: contextvars.Token[tuple[str, str, str, int] | None]) -> None:
    _job.reset(token)


def bind_request(request_id: str) -> contextvars.Token[str | None]:
    """Tag what this context logs with the HTTP request `request_id`; the token undoes it."""
    return _request.set(request_id)


def context() -> dict[str, Any]:
    """What is known here, by field name: ``job_id``, ``kind``, ``workspace``, ``attempt``, ``request_id``."""
    found: dict[str, Any] = {}
    job = _job.get()
    if job is not None:
        found.update(job_id=job[0], kind=job[1], workspace=job[2], attempt=job[3])
    request = _request.get()
    if request is not None:
        found["request_id"] = request
    return found


def redact(text: str) -> str:
    """`text` with the secret of anything shaped like a jobhouse key replaced: ``jh_<key id>_[redacted]``."""
    return _KEY.sub(r"jh_\1_[redacted]", text) if "jh_" in text else text


class TextFormatter(logging.Formatter):
    """``time level logger: message job=… kind=… workspace=… attempt=… request=…``, traceback below."""

    NAMES = {"job_id": "job", "kind": "kind", "workspace": "workspace", "attempt": "attempt", "request_id": "request"}

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        known = context()
        if known:
            line += "".join(f" {self.NAMES[name]}={value}" for name, value in known.items())
        return line

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context(),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["traceback"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # Redacting the encoded line keeps it valid JSON: the replacement has no quote or backslash.
        return redact(orjson.dumps(line, default=str).decode())


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of `log_format`, one of `FORMATS` (`Settings` checks it)."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Send the logs of this process (jobhouse's, uvicorn's, a handler's own) to `stream` (stderr) in
    `settings.log_format` at `settings.log_level`, through one handler; the handler.

    Replaces the root logger's handlers, so calling it again (tests do) does not double the lines.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(settings.log_format))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
