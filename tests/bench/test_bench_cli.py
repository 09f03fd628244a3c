"""Benchmark 3: ``palot agents list`` as a whole process with 1,000 agents (wall time).

The service of a Palot home whose store holds 1,000 settled worktree agents in 20 projects (written with
``palot.store`` before the service starts) is running; the CLI is a thin client of it, so a listing is
Python's start, the client's import, one request over the unix socket and the table. Timed, 20 runs
each, interleaved:

* ``palot agents list`` (the table of 1,000 agents; stdout to a pipe) — the figure;
* ``palot agents list --json``;
* baselines: ``python -c pass`` (the interpreter's start) and ``python -c "import palot.client"``
  (what any thin client imports); also ``palot service status`` (a whole CLI process with one small request).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from benchlib import BENCH_SCRIPT, populate_home, ratio, summary_ms
from service_support import start_service, stop_service, wait_ready

AGENTS = 1000
PROJECTS = 20
RUNS = 20
GOAL = "≤ 300 ms"
PALOT = str(Path(sys.executable).parent / "palot")


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - t
    assert done.returncode == 0, (args, done.stdout[-500:], done.stderr[-2000:])
    return elapsed, done.stdout


@pytest.mark.bench
async def test_cli_agents_list_with_1000_agents(tmp_path: Path, bench_results: Any) -> None:
    home = tmp_path / "home"
    populate_home(home, AGENTS, PROJECTS)
    proc = start_service(home, BENCH_SCRIPT)
    client = await wait_ready(home, proc)
    try:
        assert len(await client.list()) == AGENTS
        env = {**os.environ, "PALOT_HOME": str(home), "COLUMNS": "160"}
        commands = {
            "palot agents list": [PALOT, "agents", "list"],
            "palot agents list --json": [PALOT, "agents", "list", "--json"],
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import palot.client'": [sys.executable, "-c", "import palot.client"],
            "palot service status": [PALOT, "service", "status"],
        }
        for args in commands.values():  # warm the page cache and the service's pydantic models
            _run(args, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        outputs: dict[str, str] = {}
        for _ in range(RUNS):
            for name, args in commands.items():
                elapsed, outputs[name] = _run(args, env)
                times[name].append(elapsed)
    finally:
        await client.close()
        await stop_service(home, proc)

    table = outputs["palot agents list"]
    assert table.count("\n") >= AGENTS, table[:500]
    listed = json.loads(outputs["palot agents list --json"])
    assert len(listed) == AGENTS, len(listed)

    stats = {name: summary_ms(t) for name, t in times.items()}
    fig, base = stats["palot agents list"], stats["python -c pass"]
    bench_results.add(
        f"CLI `palot agents list` as a process, {AGENTS:,} agents (wall time)",
        figure={"p50_ms": fig["p50_ms"], "p99_ms": fig["p99_ms"]},
        baseline={"p50_ms": base["p50_ms"], "import_client_p50_ms": stats["python -c 'import palot.client'"]["p50_ms"],
                  "service_status_p50_ms": stats["palot service status"]["p50_ms"]},
        ratio=ratio(fig["p50_ms"], base["p50_ms"]),
        goal=GOAL, met=fig["p50_ms"] <= 300,
        runs=RUNS, per_command=stats, table_bytes=len(table),
        notes="wall time of the whole process (start, import, one request to the service, output to a pipe); "
              "ratio = list p50 / `python -c pass` p50",
    )
