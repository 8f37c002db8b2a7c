"""Run a jobhouse command with the SQL statements it runs on SQLite counted (the waiters workload).

``python -m bench.apps.sqlite_counted FILE serve --no-workers ...`` runs ``jobhouse serve
--no-workers ...`` with sqlite3's trace callback on every connection the process opens, and writes
the number of statements run so far to FILE ten times a second. The writer thread's
``PRAGMA data_version`` probe (every 5 ms, however many clients wait) is left out, so that what is
left is the statements that reading and writing jobs cost. A SQLite store has no server to ask how
many queries it answered; this is how the workload counts them.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

_PROBE = "PRAGMA DATA_VERSION"
_lock = threading.Lock()
_count = 0
_connect = sqlite3.connect


def _trace(statement: str) -> None:
    global _count
    if statement.lstrip()[: len(_PROBE)].upper() == _PROBE:
        return
    with _lock:
        _count += 1


def _counted_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn: sqlite3.Connection = _connect(*args, **kwargs)
    conn.set_trace_callback(_trace)
    return conn


def _report(path: Path) -> None:
    partial = path.with_name(path.name + ".tmp")
    while True:
        partial.write_text(str(_count))
        os.replace(partial, path)
        time.sleep(0.1)


def main() -> None:
    path, command = Path(sys.argv[1]), sys.argv[2:]
    sqlite3.connect = _counted_connect  # type: ignore[assignment]
    threading.Thread(target=_report, args=(path,), name="statement-count", daemon=True).start()
    from jobhouse.cli import main as jobhouse

    sys.argv = ["jobhouse", *command]
    jobhouse()


if __name__ == "__main__":
    main()
