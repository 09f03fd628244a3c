"""The suite's check that nothing of Palot's holds an event loop.

Every Python process the suite starts runs asyncio in debug mode: the variable is set here, before any loop
exists, and the service, the MCP and LSP servers, the CLI and the notebook kernels inherit it (the tests' own
loops are in debug mode through ``asyncio_debug = true`` in pyproject.toml). In debug mode
``palot.loopwatch`` logs each time a loop of Palot's was held for 0.1 s or more, with the line that held it
and whose line it is. A test fails when such a line is Palot's, seen in this process (a log handler) or in
the log of a Palot service a test started (any ``service/service.log`` under this worker's temporary
directory, read from where the last look stopped, so each line is blamed on the test it appeared during).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["PYTHONASYNCIODEBUG"] = "1"

from palot import loopwatch  # noqa: E402 - after the variable, though it is read only when a loop starts

_SERVICE_LOGS = ("*/service/service.log", "*/*/service/service.log", "*/*/*/service/service.log")


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if loopwatch.PALOT_MARK in message:
            self.lines.append(message)


_seen = _Seen()
loopwatch.log.addHandler(_seen)
_read: dict[Path, int] = {}


def _new_service_lines(base: Path) -> list[str]:
    lines = []
    for pattern in _SERVICE_LOGS:
        for log in base.glob(pattern):
            start = _read.get(log, 0)
            try:
                with log.open("rb") as f:
                    f.seek(start)
                    text = f.read()
            except OSError:
                continue
            _read[log] = start + len(text)
            lines += [f"{log}: {line}" for line in text.decode(errors="replace").splitlines()
                      if loopwatch.PALOT_MARK in line]
    return lines


@contextlib.contextmanager
def expected() -> Iterator[None]:
    """For a test that holds a loop in Palot's code on purpose (the watcher's own tests)."""
    loopwatch.log.removeHandler(_seen)
    try:
        yield
    finally:
        loopwatch.log.addHandler(_seen)


@pytest.fixture(autouse=True)
def no_loop_held_by_palot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    _seen.lines.clear()
    base = tmp_path_factory.getbasetemp()
    _new_service_lines(base)  # what earlier tests' services wrote is theirs
    yield
    held = _seen.lines + _new_service_lines(base)
    _seen.lines.clear()
    if held:
        pytest.fail("Palot's code held an event loop (run it in a thread, or make it async):\n" + "\n".join(held),
                    pytrace=False)
