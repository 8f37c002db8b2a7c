"""Thumbnails: two job kinds that shrink grayscale images, reporting steps and progress.

Images are binary PGM files ("P5", 8 bits per pixel), so the example needs nothing beyond
jobhouse itself. Serve it from the repository root with::

    jobhouse serve --app docs.examples.thumbnails:jobs

``tests/test_docs.py`` runs both kinds end to end, and checks that ``docs/kinds.md`` shows this
file as it is.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobhouse import JobContext, Queue, Registry

jobs = Registry()

# -- images ---------------------------------------------------------------------------------

_PGM_HEADER = re.compile(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s")


@dataclass(frozen=True)
class Gray:
    """A grayscale image: one byte per pixel, row by row."""

    width: int
    height: int
    pixels: bytes


def read_pgm(path: Path) -> Gray:
    data = path.read_bytes()
    header = _PGM_HEADER.match(data)
    if header is None or int(header[3]) > 255:
        raise ValueError(f"{path.name} is not an 8-bit binary PGM image")
    width, height = int(header[1]), int(header[2])
    pixels = data[header.end() : header.end() + width * height]
    if width < 1 or height < 1 or len(pixels) != width * height:
        raise ValueError(f"{path.name} is truncated")
    return Gray(width, height, pixels)


def write_pgm(path: Path, image: Gray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"P5\n%d %d\n255\n" % (image.width, image.height) + image.pixels)


def shrink(image: Gray, size: int) -> Gray:
    """The image with its longest side at most `size`, each pixel the mean of the block it covers."""
    scale = min(1.0, size / max(image.width, image.height))
    width = max(1, round(image.width * scale))
    height = max(1, round(image.height * scale))
    out = bytearray(width * height)
    for y in range(height):
        rows = range(y * image.height // height, (y + 1) * image.height // height)
        for x in range(width):
            left, right = x * image.width // width, (x + 1) * image.width // width
            block = [image.pixels[row * image.width + col] for row in rows for col in range(left, right)]
            out[y * width + x] = (sum(block) + len(block) // 2) // len(block)
    return Gray(width, height, bytes(out))


# -- an async kind with fixed steps -----------------------------------------------------------


class ThumbnailInput(BaseModel):
    """Input of a `thumbnails` job; anything else is refused with a 400 when the job is created."""

    model_config = ConfigDict(extra="forbid")

    images: list[str] = Field(min_length=1, max_length=100)
    out_dir: str = Field(min_length=1)
    size: int = Field(default=64, ge=1, le=1024)


@jobs.kind(
    "thumbnails",
    title="Making thumbnails",
    steps=[("read", "Reading images"), ("shrink", "Shrinking images"), ("write", "Writing thumbnails")],
    input=ThumbnailInput,
    timeout=600,
    max_attempts=2,
    result_type="thumbnail-set",
)
async def thumbnails(ctx: JobContext) -> dict[str, Any]:
    paths = [Path(name) for name in ctx.input["images"]]
    async with ctx.step("read"):
        images = [await asyncio.to_thread(read_pgm, path) for path in paths]
    small: list[Gray] = []
    async with ctx.step("shrink"):
        for done, image in enumerate(images, start=1):
            small.append(await asyncio.to_thread(shrink, image, ctx.input["size"]))
            # Steps alone move progress from 33 to 67 when this step ends; show the way there.
            await ctx.progress(33 + 34 * done // len(images))
    out_dir = Path(ctx.input["out_dir"])
    made = []
    async with ctx.step("write"):
        for path, image in zip(paths, small, strict=True):
            target = out_dir / f"{path.stem}.thumb.pgm"
            await asyncio.to_thread(write_pgm, target, image)
            made.append({"path": str(target), "width": image.width, "height": image.height})
    return {"thumbnails": made}


# -- a sync kind whose steps depend on its input ----------------------------------------------

IconSize = Annotated[int, Field(ge=1, le=1024)]


class IconSetInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1)
    out_dir: str = Field(min_length=1)
    sizes: list[IconSize] = Field(default=[16, 32, 64], min_length=1, max_length=8)

    @field_validator("sizes")
    @classmethod
    def _distinct(cls, sizes: list[int]) -> list[int]:
        if len(set(sizes)) != len(sizes):
            raise ValueError("sizes must be distinct")
        return sizes


def icon_steps(input: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One step per size, planned from the job's validated input when the job is created."""
    return [(f"size-{size}", f"Making the {size}px icon") for size in input["sizes"]]


@jobs.kind("icon-set", title="Making an icon set", steps=icon_steps, input=IconSetInput, max_attempts=1)
def icon_set(ctx: JobContext) -> dict[str, Any]:
    """A plain function: it runs in a thread, so blocking calls are fine here."""
    source = Path(ctx.input["image"])
    image = read_pgm(source)
    icons = {}
    for size in ctx.input["sizes"]:
        ctx.check_cancelled()  # stop cleanly here, before the worker interrupts the thread
        with ctx.step(f"size-{size}"):
            target = Path(ctx.input["out_dir"]) / f"{source.stem}-{size}.pgm"
            write_pgm(target, shrink(image, size))
            icons[str(size)] = str(target)
    return {"icons": icons}


# -- enqueueing from Python -------------------------------------------------------------------


@jobs.kind("gallery", title="Making a gallery", steps=[("queue", "Queueing thumbnails")], max_attempts=1)
async def gallery(ctx: JobContext) -> dict[str, str]:
    """A handler that queues another job: `ctx.enqueue` puts it in this job's workspace."""
    async with ctx.step("queue"):
        job = await ctx.enqueue("thumbnails", input={"images": ctx.input["images"], "out_dir": ctx.input["out_dir"]})
    return {"thumbnails_job": job.id}


async def queue_thumbnails(queue: Queue, workspace: str, images: list[str], out_dir: str) -> str:
    """Queue a `thumbnails` job from your own code, through a `Queue` over jobhouse's store; its id."""
    job = await queue.enqueue("thumbnails", workspace=workspace, input={"images": images, "out_dir": out_dir})
    return job.id


async def queue_with_order(
    queue: Queue, conn: Any, workspace: str, order_id: int, images: list[str], out_dir: str
) -> str:
    """Record an order and queue its thumbnails in one PostgreSQL transaction, on your own connection.

    `conn` is a psycopg async connection to the database jobhouse uses. If the transaction rolls
    back there is no job; workers hear of the job only once it commits.
    """
    async with conn.transaction():
        await conn.execute("INSERT INTO orders (id) VALUES (%s)", (order_id,))
        job = await queue.enqueue(
            "thumbnails", workspace=workspace, input={"images": images, "out_dir": out_dir}, connection=conn
        )
    return str(job.id)
