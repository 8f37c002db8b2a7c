"""The web dashboard's static files, served at /ui by `jobhouse.api.ui`."""

from __future__ import annotations
