"""docs/guarantees.md names the test behind each promise; every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
GUARANTEES = (TESTS.parent / "docs" / "guarantees.md").read_text()


def test_every_test_the_guarantees_name_exists() -> None:
    cited = re.findall(r"`(test_\w+\.py)(?:::([\w, `]+))?`", GUARANTEES)
    assert len(cited) > 30
    for module, _ in cited:
        assert (TESTS / module).exists(), module
    for module, names in re.findall(r"`(test_\w+\.py)::(test_\w+)`", GUARANTEES):
        assert re.search(rf"^(async )?def {names}\(", (TESTS / module).read_text(), re.M), f"{module}::{names}"
    for module, rest in re.findall(r"`(test_\w+\.py)::test_\w+`((?:, `test_\w+`)+)", GUARANTEES):
        source = (TESTS / module).read_text()
        for name in re.findall(r"`(test_\w+)`", rest):
            assert re.search(rf"^(async )?def {name}\(", source, re.M), f"{module}::{name}"
