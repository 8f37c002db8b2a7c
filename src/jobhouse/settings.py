"""Settings: one frozen pydantic-settings model, read from ``JOBHOUSE_*`` environment variables and CLI flags.

- ``Settings(port=8001, ...)`` takes keyword arguments only: it reads no environment, no ``.env``
  file and no secrets directory.
- ``Settings.from_env(environ, **overrides)`` reads the ``JOBHOUSE_*`` variables of `environ`
  (nothing else), then applies `overrides` (the CLI flags; None means "not given"). A bad value
  raises `SettingsError`, a `ValueError` whose message names the variable or flag and what is wrong.

Every field's type and range is declared on it (``Field(ge=..., le=...)``); ``Below`` and ``OneOf``
add the two rules pydantic has no keyword for; ``Env`` names a variable that is not
``JOBHOUSE_<FIELD>``. ``docs/configuration.md`` lists them all, and ``tests/test_docs.py`` checks
the page against these declarations.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, GetCoreSchemaHandler, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import CoreSchema, ErrorDetails, PydanticCustomError, core_schema
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from jobhouse.egress import parse_rules
from jobhouse.job import JobStatus
from jobhouse.retry import Backoff
from jobhouse.sources import BUILT_IN, WELL_KNOWN
from jobhouse.threads import MAX_THREADS

if TYPE_CHECKING:
    from jobhouse.worker import WorkerOptions

MAX_DURATION = 10 * 365 * 24 * 3600.0
"""The longest any duration may be, in seconds (ten years); longer ones overflow date arithmetic."""

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class Env:
    """The environment variable that sets a field, where it is not ``JOBHOUSE_<FIELD>``."""

    name: str


@dataclass(frozen=True, slots=True)
class Below:
    """The field must be less than the setting named `other`."""

    other: str


@dataclass(frozen=True, slots=True)
class OneOf:
    """The value (or, for a tuple, every item) must be one of `choices`."""

    choices: tuple[str, ...]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def _check(self, value: Any) -> Any:
        wrong = [item for item in (value if isinstance(value, tuple) else (value,)) if item not in self.choices]
        if wrong:
            raise PydanticCustomError(
                "one_of",
                "{wrong} is not one of {choices}",
                {"wrong": ", ".join(map(repr, wrong)), "choices": ", ".join(self.choices)},
            )
        return value


Seconds = Annotated[float, Field(gt=0, le=MAX_DURATION, allow_inf_nan=False)]
"""A duration that must be positive."""
SecondsOrZero = Annotated[float, Field(ge=0, le=MAX_DURATION, allow_inf_nan=False)]
"""A duration that may be 0."""
Text = Annotated[str, Field(min_length=1)]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)]
"""A comma-separated list in the environment (NoDecode: not JSON), a tuple of strings in Python."""


@dataclass(frozen=True, slots=True)
class WebOrigins:
    """Every item must be a browser origin, ``scheme://host[:port]`` (no path), or ``*``."""

    pattern = re.compile(r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$")

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def _check(self, value: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [item for item in value if item != "*" and not self.pattern.match(item)]
        if wrong:
            raise PydanticCustomError(
                "origin",
                "{wrong}: an origin is scheme://host[:port], without a path or a trailing slash (or *)",
                {"wrong": ", ".join(map(repr, wrong))},
            )
        return value


class Settings(BaseSettings):
    """Everything one jobhouse process is told; `docs/configuration.md` describes each setting."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", env_prefix="JOBHOUSE_", env_ignore_empty=True)

    database: Annotated[Text | None, Env("JOBHOUSE_DATABASE_URL")] = None
    data_dir: Text | None = None
    host: Text = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    concurrency: Annotated[int, Field(ge=0, le=MAX_THREADS)] = 16
    lease: Seconds = 30.0
    heartbeat: Annotated[float, Field(gt=0, allow_inf_nan=False), Below("lease")] = 5.0
    poll_interval: Seconds = 1.0
    rescue_interval: Seconds = 1.0
    refresh_interval: Seconds = 1.0
    long_poll_max: Annotated[float, Field(gt=0, le=120, allow_inf_nan=False)] = 120.0
    sse_ping: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] = 15.0
    cors_origins: Annotated[Names, WebOrigins()] = ()
    shutdown_grace: SecondsOrZero = 10.0
    cancel_grace: SecondsOrZero = 0.5
    max_body: Annotated[int, Field(ge=1)] = 1024 * 1024
    pool_size: Annotated[int, Field(ge=1)] = 10
    store_timeout: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] = 5.0
    max_queued: Annotated[int, Field(ge=0)] = 0
    idempotency_ttl: Seconds = 24 * 3600.0
    retain_completed: SecondsOrZero = 7 * 24 * 3600.0
    retain_failed: SecondsOrZero = 30 * 24 * 3600.0
    retain_cancelled: SecondsOrZero = 7 * 24 * 3600.0
    prune_interval: Seconds = 60.0
    apps: Annotated[Names, Env("JOBHOUSE_APP")] = ()
    sources: Annotated[Names, OneOf(BUILT_IN)] = BUILT_IN
    catalogs: Names = (WELL_KNOWN,)
    apt_lists: Text = "/var/lib/apt/lists"
    dpkg_dir: Text = "/var/lib/dpkg"
    hide_launch_paths: bool = False
    scan_workers: Annotated[int, Field(ge=0)] = 2
    log_level: Annotated[str, OneOf(LOG_LEVELS)] = "info"
    access_log: bool = False
    # -- webhooks
    webhook_hosts: Names = ()
    webhook_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False), Below("webhook_lease")] = 5.0
    webhook_lease: Seconds = 30.0
    webhook_backoff: Seconds = 10.0
    webhook_max_attempts: Annotated[int, Field(ge=1, le=100)] = 16
    webhook_max_age: Seconds = 24 * 3600.0
    # -- HTTP hardening
    header_timeout: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] = 10.0
    idle_timeout: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] = 5.0
    max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 16 * 1024
    max_headers: Annotated[int, Field(ge=10, le=1000)] = 100
    max_url: Annotated[int, Field(ge=256, le=1024 * 1024)] = 8 * 1024
    limit_concurrency: Annotated[int, Field(ge=0)] = 15_000
    max_waits: Annotated[int, Field(ge=0)] = 12_000
    max_waits_per_key: Annotated[int, Field(ge=0)] = 10_000
    max_list_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    sync_rate: Annotated[float, Field(ge=0, le=60_000, allow_inf_nan=False)] = 10.0
    sync_burst: Annotated[int, Field(ge=1, le=10_000)] = 10
    http_parser: Annotated[str, OneOf(("auto", "httptools", "h11"))] = "auto"
    # -- metrics and readiness
    metrics: bool = True
    metrics_token: Text | None = None
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    # -- the web dashboard
    ui: bool = True
    # -- logs and error messages
    log_format: Annotated[str, OneOf(("text", "json"))] = "text"
    redact_errors: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments only; `from_env` reads the environment it is given, and no ``.env`` file."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Defaults, then the ``JOBHOUSE_*`` variables of `environ`, then `overrides` (CLI flags;
        None or () means not given). Raises `SettingsError` naming what is wrong."""
        found = _Environment(cls, environ)()
        given = {name: value for name, value in overrides.items() if value is not None and value != ()}
        values = found | given
        values.setdefault("data_dir", str(default_data_dir(environ)))  # from `environ`, not os.environ
        sources = {name: (cls.variable(name), found[name]) for name in found}
        sources |= {name: (flag(name), value) for name, value in given.items()}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SettingsError([_problem(error, sources) for error in exc.errors()]) from None

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable that sets the setting `name`."""
        for rule in cls.model_fields[name].metadata:
            if isinstance(rule, Env):
                return rule.name
        return f"{cls.model_config.get('env_prefix', '')}{name.upper()}"

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("webhook_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_rules(value)  # a ValueError names the entry
        return value

    @model_validator(mode="after")
    def _in_order(self) -> Settings:
        for name, field in type(self).model_fields.items():
            for rule in field.metadata:
                if isinstance(rule, Below) and not getattr(self, name) < getattr(self, rule.other):
                    raise PydanticCustomError(
                        "below_setting",
                        "{name} ({value}) must be less than {other} ({limit})",
                        {
                            "name": name,
                            "value": getattr(self, name),
                            "other": rule.other,
                            "limit": getattr(self, rule.other),
                        },
                    )
        return self

    def data_path(self) -> Path:
        """The data directory: `data_dir`, else the XDG default (`default_data_dir`)."""
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir(os.environ)

    def store_url(self) -> str:
        """The store to open: `database` when given, else the SQLite file in the data directory."""
        return self.database or f"sqlite:///{self.data_path() / STORE_FILE}"

    def ensure_data_dir(self) -> Path:
        """Create the data directory (mode 0700: only this user) if it is missing; its path."""
        path = self.data_path()
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def retention(self) -> dict[JobStatus, float]:
        """Seconds each finished status is kept after the job ends (0: forever)."""
        return {
            JobStatus.COMPLETED: self.retain_completed,
            JobStatus.FAILED: self.retain_failed,
            JobStatus.CANCELLED: self.retain_cancelled,
        }

    def worker_options(self) -> WorkerOptions:
        from jobhouse.worker import WorkerOptions  # the worker's modules load only where one runs

        return WorkerOptions(
            concurrency=max(self.concurrency, 1),
            lease=self.lease,
            heartbeat=self.heartbeat,
            poll_interval=self.poll_interval,
            shutdown_grace=self.shutdown_grace,
            cancel_grace=self.cancel_grace,
            backoff=Backoff(),
        )


STORE_FILE = "jobhouse.db"
"""The SQLite file in the data directory, the store used when no `database` is given."""


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """Where jobhouse keeps its files unless told otherwise: ``$XDG_DATA_HOME/jobhouse``, else
    ``~/.local/share/jobhouse`` (the XDG base directory default), whatever the working directory."""
    xdg = environ.get("XDG_DATA_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "jobhouse"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "jobhouse"


class SettingsError(ValueError):
    """Settings that cannot be used: one problem per bad value, each naming its variable or flag."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            message = f"bad setting {problems[0]}"
        else:
            message = "\n  ".join([f"{len(problems)} bad settings:", *problems])
        super().__init__(message)


def flag(name: str) -> str:
    """The command-line option that sets the setting `name` (where there is one)."""
    return "--app" if name == "apps" else f"--{name.replace('_', '-')}"


class _Environment(EnvSettingsSource):
    """The ``JOBHOUSE_*`` variables of a mapping given to it (not `os.environ`), matched by exact
    name: ``JOBHOUSE_<FIELD>``, or the field's `Env`. Empty values count as unset."""

    def __init__(self, settings_cls: type[Settings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls, case_sensitive=True)
        self.settings = settings_cls
        self.env_vars = {name: value for name, value in environ.items() if not (self.env_ignore_empty and value == "")}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.env_vars.get(self.settings.variable(field_name)), field_name, False


def _problem(error: ErrorDetails, sources: Mapping[str, tuple[str, Any]]) -> str:
    """One line for one validation error: where the value came from, then what is wrong."""

    def where(name: str, value: Any = None) -> str:
        if name in sources:
            label, raw = sources[name]
            return f"{label}={raw!r}"
        return f"{name} ({value}, its default)" if value is not None else name

    if error["type"] == "below_setting":
        ctx = error.get("ctx", {})
        name, other = str(ctx["name"]), str(ctx["other"])
        return f"{where(name, ctx['value'])}: must be less than {where(other, ctx['limit'])}"
    name = str(error["loc"][0]) if error["loc"] else ""
    return f"{where(name)}: {error['msg']}"
