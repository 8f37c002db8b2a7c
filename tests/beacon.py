"""Cross-process test signals: handlers in a server process report to, and wait on, the test.

The test runs a `Beacon` (a tiny line protocol on loopback). A handler calls `arrive(address,
message)` to say it reached a point, and `held(address, name)` to block until the test calls
`release(name)`. Tests await what they need (`await beacon.seen("started <id>")`), never sleep.
A message is seen by its words: "started <id>" matches "started <id> attempt 2 pid 123".
"""

from __future__ import annotations

import asyncio
import socket
from collections import defaultdict


class Beacon:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self._changed = asyncio.Condition()
        self._released: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._server: asyncio.Server | None = None
        self.address = ""

    async def __aenter__(self) -> Beacon:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for event in self._released.values():
            event.set()
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode().rstrip("\n")
            verb, _, rest = line.partition(" ")
            if verb == "arrive":
                async with self._changed:
                    self.messages.append(rest)
                    self._changed.notify_all()
                writer.write(b"ok\n")
            elif verb == "hold":
                await self._released[rest].wait()
                writer.write(b"go\n")
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def has(self, message: str) -> bool:
        """Whether a handler sent `message`, or a message that starts with its words."""
        return any(m == message or m.startswith(message + " ") for m in self.messages)

    async def seen(self, message: str, timeout: float = 15.0) -> None:
        """Wait until a handler sent `message` (see `has`)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.has(message))

    def release(self, name: str) -> None:
        self._released[name].set()


# -- the handler side (runs inside the server process) ----------------------------------------


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


async def arrive(address: str, message: str) -> None:
    reader, writer = await asyncio.open_connection(*_split(address))
    writer.write(f"arrive {message}\n".encode())
    await writer.drain()
    await reader.readline()
    writer.close()


async def held(address: str, name: str) -> None:
    """Block until the test releases `name`."""
    reader, writer = await asyncio.open_connection(*_split(address))
    try:
        writer.write(f"hold {name}\n".encode())
        await writer.drain()
        await reader.readline()
    finally:
        writer.close()


def arrive_sync(address: str, message: str) -> None:
    with socket.create_connection(_split(address), timeout=10) as conn:
        conn.sendall(f"arrive {message}\n".encode())
        conn.recv(16)
