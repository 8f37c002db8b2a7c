"""Operator catalog files: applications listed by hand, in JSON or YAML, for any operating system.

A catalog file holds a list of applications::

    apps:
      - app: safari                  # the identifier a search matches first (required)
        name: Safari                 # the display name (required)
        os: macos                    # linux | macos | windows (required)
        kind: gui                    # gui | cli (required)
        version: "17.4"              # optional
        launch: open -a Safari       # optional: how to start it
        install: ...                 # optional: how to get it
        description: Apple's browser # optional
        keywords: [browser, web]     # optional: more words a search finds it by

The order of a file is its popularity signal: list the best-known applications first. Each file
is a source of its own, named after the file (``well-known.yaml`` is source
``well-known``). jobhouse ships one, `WELL_KNOWN`, with well-known applications for macOS and
Windows, so searches for those systems find something out of the box.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobhouse.catalog import OS, AppKind, Entry, Progress
from jobhouse.sources.signature import signature
from jobhouse.validation import describe

#: The catalog jobhouse ships: well-known applications for macOS and Windows.
WELL_KNOWN = str(resources.files("jobhouse").joinpath("catalogs", "well-known.yaml"))

Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]


class CatalogApp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app: Text
    name: Text
    os: Literal["linux", "macos", "windows"]
    kind: Literal["gui", "cli"]
    version: Text | None = None
    launch: Text | None = None
    install: Text | None = None
    description: Text | None = None
    keywords: list[Text] = Field(default_factory=list, max_length=50)


class CatalogDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    apps: list[CatalogApp]


class CatalogFileError(ValueError):
    """A catalog file that cannot be read or does not follow the format."""


class CatalogSource:
    """The applications of one catalog file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.id = self.path.stem
        self.title = f"Catalog {self.path.name}"

    def fingerprint(self) -> str | None:
        return signature([self.path])

    def scan(self, progress: Progress | None = None) -> list[Entry]:
        apps = load(self.path).apps
        entries: dict[str, Entry] = {}
        for place, entry in enumerate(apps):
            entry_id = f"{self.id}:{entry.os}:{entry.app}"
            entries.setdefault(
                entry_id,
                Entry(
                    source=self.id,
                    id=entry_id,
                    app=entry.app,
                    name=entry.name,
                    os=OS(entry.os),
                    kind=AppKind(entry.kind),
                    version=entry.version,
                    launch=entry.launch,
                    install=entry.install,
                    description=entry.description,
                    keywords=tuple(entry.keywords),
                    popularity=round(1 - place / len(apps), 4),  # a catalog lists the best known first
                ),
            )
        if progress is not None:
            progress(1.0)
        return sorted(entries.values(), key=lambda e: e.id)


def load(path: Path) -> CatalogDocument:
    """Parse and check a catalog file; `CatalogFileError` says what is wrong and where."""
    import yaml  # loaded when a catalog is read, not with every process

    try:
        text = path.read_text("utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise CatalogFileError(f"{path}: cannot read it: {exc}") from exc
    try:
        return CatalogDocument.model_validate(data)
    except ValidationError as exc:
        raise CatalogFileError(f"{path}: {describe(exc)}") from exc
