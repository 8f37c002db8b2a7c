"""A cheap signature of files and directories: what changes when they do."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable


def signature(paths: Iterable[str | os.PathLike[str]]) -> str:
    """A hash of each path's size, modification time and inode (a directory's time moves when an
    entry is added, removed or renamed in it); a missing path counts as missing."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            info = os.stat(path)
            digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()[:32]


def tree(root: str | os.PathLike[str]) -> list[str]:
    """`root` and everything below it, in a stable order."""
    found = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        found.append(directory)
        found.extend(os.path.join(directory, name) for name in sorted(files))
    return found or [str(root)]
