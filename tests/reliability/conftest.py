"""The reliability suite's figures: each test records what it measured; they are written to
test-output/reliability/<test>.json and printed at the end of the run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SERVER_URL

OUT = Path(__file__).resolve().parent.parent.parent / "test-output" / "reliability"
_FIGURES: dict[str, dict[str, object]] = {}

Figures = Callable[..., None]


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """`figures(name=value, ...)`: the test's figures, kept even if it then fails."""
    found: dict[str, object] = {}

    def record(**values: object) -> None:
        found.update(values)

    yield record
    if found:
        name = f"{request.node.name}-{'postgresql' if SERVER_URL else 'sqlite'}"
        _FIGURES[name] = found
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{name}.json").write_text(json.dumps(found, indent=2, default=str) + "\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("reliability figures")
        for name, found in _FIGURES.items():
            terminalreporter.write_line(f"{name}: {json.dumps(found, default=str)}")
