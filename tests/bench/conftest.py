"""Benchmark fixtures: the results collector, Palot instances on the bench script, and server cleanup.

Results are collected for the whole session and, at its end, written to
``bench-results/results.json`` and ``bench-results/results.md`` at the repo
root and printed as a table. Benchmarks report figures; they never assert timings.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from benchlib import BENCH_SCRIPT, _top

from palot import Palot, PalotPaths
from palot.servers import ServerManager, pid_alive
from palot.servers import terminate as terminate_pid

# The suite's loop check (tests/loop_blocks.py) runs every process in asyncio's debug mode, which slows
# what a benchmark measures: figures are taken in normal mode, in this process and every one it starts.
os.environ.pop("PYTHONASYNCIODEBUG", None)

_RESULTS_KEY = pytest.StashKey["BenchResults"]()
CORE_SCRIPT = _top.CORE_SCRIPT  # for tests/service_support.py, which imports it from `conftest`


# --- results -------------------------------------------------------------------


@dataclass
class BenchResult:
    name: str
    figure: dict[str, float]  # the measured values (p50_ms, p99_ms, rss_mb, ...)
    baseline: dict[str, float] | None  # the same values for the baseline, measured in the same run
    ratio: float | None  # figure / baseline, on the value the goal is about
    goal: str
    met: bool | None  # None: the goal is "report only"
    details: dict[str, Any] = field(default_factory=dict)


def _fmt_value(key: str, value: Any) -> str:
    if isinstance(value, float) and value != value:  # NaN
        return f"{key} n/a"
    for suffix, unit in (("_ms", " ms"), ("_mb", " MB")):
        if key.endswith(suffix):
            return f"{key[: -len(suffix)]} {value:,.1f}{unit}" if value >= 100 else f"{key[: -len(suffix)]} {value:.2f}{unit}"
    return f"{key} {value}"


def _fmt(values: dict[str, Any] | None) -> str:
    if not values:
        return "—"
    return ", ".join(_fmt_value(k, v) for k, v in values.items())


class BenchResults:
    """Collects every benchmark's figures; written and printed once at session end."""

    def __init__(self) -> None:
        self.results: list[BenchResult] = []
        self.started = time.time()
        self.load_at_start = _loadavg()

    def add(
        self,
        name: str,
        *,
        figure: dict[str, float],
        baseline: dict[str, float] | None,
        ratio: float | None,
        goal: str,
        met: bool | None,
        **details: Any,
    ) -> BenchResult:
        details.setdefault("loadavg_1m", _loadavg())
        result = BenchResult(name, figure, baseline, ratio, goal, met, details)
        self.results.append(result)
        print(f"\n[bench] {name}: {_fmt(figure)} | baseline: {_fmt(baseline)} | ratio {ratio} | "
              f"goal: {goal} | met: {_met(met)}")
        return result

    def markdown(self) -> str:
        lines = [
            "| benchmark | figure | baseline | ratio | goal | met? |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.results:
            ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
            lines.append(f"| {r.name} | {_fmt(r.figure)} | {_fmt(r.baseline)} | {ratio} | {r.goal} | {_met(r.met)} |")
        return "\n".join(lines)

    def write(self, root: Path) -> Path:
        out = root / "bench-results"
        out.mkdir(parents=True, exist_ok=True)
        doc = {
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "duration_s": round(time.time() - self.started, 1),
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": _cpu_count(), "loadavg_1m_at_start": self.load_at_start,
                        "loadavg_1m_at_end": _loadavg()},
            "results": [asdict(r) for r in self.results],
        }
        (out / "results.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
        (out / "results.md").write_text(
            "# Palot benchmarks\n\n"
            f"Run {doc['generated_at']} on {doc['machine']['cpus']} CPUs, {doc['machine']['platform']}, "
            f"load average {doc['machine']['loadavg_1m_at_start']} at the start and "
            f"{doc['machine']['loadavg_1m_at_end']} at the end (other work on the machine skews every figure). "
            "Figures are measured, never asserted; ratios are against a baseline measured in the same run.\n\n"
            + self.markdown() + "\n\nDetails (per-run numbers, event counts) are in `results.json`.\n"
        )
        return out


def _met(met: bool | None) -> str:
    return "n/a" if met is None else ("yes" if met else "no")


def _cpu_count() -> int:
    return os.cpu_count() or 0


def _loadavg() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


@pytest.fixture(scope="session")
def bench_results(request: pytest.FixtureRequest) -> BenchResults:
    results = request.config.stash.setdefault(_RESULTS_KEY, BenchResults())
    return results


def pytest_sessionfinish(session: pytest.Session) -> None:
    results = session.config.stash.get(_RESULTS_KEY, None)
    if results is not None and results.results:
        results.write(session.config.rootpath)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS_KEY, None)
    if results is None or not results.results:
        return
    terminalreporter.section("Palot benchmarks")
    for line in results.markdown().splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"written to {config.rootpath / 'bench-results'}/results.{{json,md}}")


_BENCH_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Benchmarks take minutes: a plain `pytest` that reaches this folder skips them unless `-m bench` is given."""
    if "bench" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="benchmark: run with `make bench` (pytest tests/bench -m bench)")
    for item in items:
        if _BENCH_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


# --- servers -------------------------------------------------------------------


class ServerRegistry:
    """Every server process a benchmark started, by PID, so none outlives the session."""

    def __init__(self) -> None:
        self.pids: dict[int, str] = {}

    def track(self, manager: ServerManager) -> None:
        state = manager.state
        if state is None:
            return
        self.pids[state.pid] = "serve"
        if state.scripted_pid:
            self.pids[state.scripted_pid] = "palot.scripted"

    def cleanup(self) -> list[int]:
        killed = []
        for pid, marker in self.pids.items():
            if pid_alive(pid) and marker in _cmdline(pid):
                terminate_pid(pid)
                killed.append(pid)
        return killed


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture(scope="session")
def server_registry() -> Any:
    registry = ServerRegistry()
    yield registry
    leftover = registry.cleanup()
    if leftover:
        print(f"\n[bench] stopped {len(leftover)} leftover server process(es): {leftover}")


StartPalot = Callable[..., Awaitable[Palot]]


@pytest.fixture
async def start_palot(tmp_path: Path, opencode_bin: Path, server_registry: ServerRegistry) -> AsyncIterator[StartPalot]:
    """``await start_palot(name)``: a started Palot on its own shared server with the bench script.

    Every Palot started here is closed and its server stopped (by PID) at teardown.
    """
    started: list[Palot] = []

    async def start(name: str = "palot", **kwargs: Any) -> Palot:
        palot = Palot(PalotPaths(tmp_path / name), isolated=True, scripted=str(BENCH_SCRIPT),
                      opencode_bin=opencode_bin, **kwargs)
        started.append(palot)
        try:
            await palot.start()
        finally:
            server_registry.track(palot.server)
        return palot

    yield start
    for palot in reversed(started):
        with contextlib.suppress(Exception):
            await palot.close()
        with contextlib.suppress(Exception):
            await palot.stop_server()
