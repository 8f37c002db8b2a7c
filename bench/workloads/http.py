"""HTTP: jobhouse's own API under wrk (peers have no HTTP API, so the numbers are absolute)."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.config import Config
from bench.procs import Process, run, tool, wait_for_port

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class HttpResult:
    endpoint: str
    requests_per_second: float
    requests: int
    non_2xx: int
    socket_errors: int
    latency_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(endpoint: str, output: str) -> HttpResult:
    """The numbers from `wrk --latency` output."""
    latency: dict[str, float] = {}
    avg = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", output, re.M)
    if avg:
        latency["avg"] = _ms(avg[1])
        latency["max"] = _ms(avg[3])
    for pct, value in re.findall(r"^\s*(50|75|90|99)%\s+(\S+)", output, re.M):
        latency[f"p{pct}"] = _ms(value)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if not rate or not total:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return HttpResult(
        endpoint=endpoint,
        requests_per_second=float(rate[1]),
        requests=int(total[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        latency_ms=latency,
    )


def _wrk(config: Config, url: str, script: Path) -> str:
    argv = [
        "wrk",
        f"-t{config.http_threads}",
        f"-c{config.http_connections}",
        f"-d{config.http_duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    return run(argv, timeout=config.http_duration + 60)


def _script(path: Path, key: str, body: str | None) -> Path:
    lines = [f'wrk.headers["X-API-Key"] = "{key}"']
    if body is not None:
        lines += ['wrk.method = "POST"', f"wrk.body = '{body}'", 'wrk.headers["Content-Type"] = "application/json"']
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(config: Config, workdir: Path) -> list[HttpResult]:
    db = workdir / f"http-{config.run_id}.db"
    url = f"sqlite:///{db}"
    env = {"JOBHOUSE_LOG_LEVEL": "warning"}
    try:
        key = run([tool("jobhouse"), "keys", "create", "--workspace", "bench", "--database", url], env).strip()
        port = _free_port()
        argv = [
            tool("jobhouse"),
            "serve",
            "--no-workers",
            "--app",
            "bench.kinds:jobs",
            "--database",
            url,
            "--host",
            HOST,
            "--port",
            str(port),
        ]
        with Process("jobhouse serve", argv, env, workdir / "jobhouse-serve.log") as server:
            wait_for_port(HOST, port, process=server)
            base = f"http://{HOST}:{port}"
            request = urllib.request.Request(
                f"{base}/api/jobs",
                data=b'{"type": "noop"}',
                headers={"X-API-Key": key, "Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                job_id = json.load(response)["job"]["id"]
            results = [
                parse_wrk(
                    "GET /api/jobs/{id}",
                    _wrk(config, f"{base}/api/jobs/{job_id}", _script(workdir / "get.lua", key, None)),
                ),
                parse_wrk(
                    "POST /api/jobs",
                    _wrk(config, f"{base}/api/jobs", _script(workdir / "post.lua", key, '{"type":"noop"}')),
                ),
            ]
            server.check()
        return results
    finally:
        for suffix in ("", "-wal", "-shm"):
            db.with_name(db.name + suffix).unlink(missing_ok=True)
