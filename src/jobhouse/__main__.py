"""``python -m jobhouse``: the same as the ``jobhouse`` command."""

from __future__ import annotations

from jobhouse.cli import main

main()
