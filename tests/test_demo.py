"""`palot demo` (what `make demo` runs) completes offline and leaves what it says it leaves."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from conftest import git
from palot import PalotPaths
from palot.demo import run_demo
from palot.servers import ServerManager


async def test_demo_runs_two_agents_applies_one_and_archives_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opencode_bin: Path
):
    monkeypatch.setenv("PALOT_HOME", str(tmp_path / "home"))
    console = Console(record=True, width=120)
    assert await run_demo(console=console) == 0
    out = console.export_text()
    demo = PalotPaths.default().home / "demo"
    sample = demo / "sample-project"
    assert "Hello, Palot!" in out and "demo finished" in out
    assert "import sys" in (sample / "greet.py").read_text()  # agent 1's change applied
    assert not (sample / "test_greet.py").exists()  # agent 2's change stays on its branch
    assert set(git(sample, "branch", "--list", "palot/*").split()) == {"palot/greeting-cli", "palot/unit-tests"}
    assert "test_greet.py" in git(sample, "show", "--stat", "palot/unit-tests")
    assert ServerManager.read_running(PalotPaths(demo)) is None
    # It ran through its own Palot service (scripted, isolated), stopped at the end.
    assert "Palot service: pid" in out
    assert '"scripted": "demo"' in (demo / "service" / "service.json").read_text()
    assert not (demo / "service" / "palot.sock").exists()
