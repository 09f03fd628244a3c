"""``palot demo``: two agents on a sample project, offline, with the scripted model.

Everything happens under ``<data dir>/demo`` (its own store, worktrees and an
isolated OpenCode server), so the demo never touches the user's real agents
or OpenCode config.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from . import render
from .agents import AGENT_UPDATED, ActivityItem, Agent, AgentStatus
from .agents.activity import part_activity
from .core import Palot
from .install import ensure_opencode, install_ripgrep
from .opencode import Part
from .paths import PalotPaths
from .servers import ServerManager

SAMPLE_FILES = {
    "README.md": "# sample project\n\nA tiny project for Palot's demo agents.\n",
    "greet.py": (
        'def greet(name: str = "world") -> str:\n'
        '    return f"Hello, {name}!"\n\n\n'
        'if __name__ == "__main__":\n'
        "    print(greet())\n"
    ),
}
TASKS = [
    ("Greeting CLI", "Turn greet.py into a greeting module that takes a name on the command line, "
                     "and document it in the README."),
    ("Unit tests", "Add unit tests for greet.py and run them."),
]
SETTLED = {AgentStatus.COMPLETED, AgentStatus.FAILED, AgentStatus.PAUSED, AgentStatus.WAITING}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60).stdout


def make_sample_project(path: Path) -> Path:
    """A small git repository for the demo agents."""
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", "Palot Demo")
    _git(path, "config", "user.email", "demo@palot.invalid")
    for name, content in SAMPLE_FILES.items():
        (path / name).write_text(content)
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "Sample project")
    return path


async def run_demo(*, keep: bool = False, console: Console | None = None, timeout: float = 90.0) -> int:
    """Run the demo end to end; returns a process exit code."""
    console = console or render.console()
    started = time.monotonic()
    default = PalotPaths.default()
    paths = PalotPaths(default.home / "demo")

    console.rule(Text.assemble(("Palot demo", "bold"), " — two agents, one shared OpenCode server, offline"))

    def say(message: str) -> None:  # progress lines (paths, URLs) are text, never markup
        console.print(Text(message))

    binary = ensure_opencode(default, progress=say)
    install_ripgrep(say)
    # The demo area is Palot's own: reset it so every run starts the same way.
    await ServerManager(paths, supervise=False).stop()
    shutil.rmtree(paths.home, ignore_errors=True)
    sample = make_sample_project(paths.home / "sample-project")
    console.print(Text.assemble("sample project: ", (str(sample), "bold")))

    palot = Palot(paths, isolated=True, scripted="demo", opencode_bin=binary)
    await palot.start()
    state = palot.server.state
    assert state is not None
    console.print(Text(f"shared OpenCode server: {state.url} (pid {state.pid}, password-protected, "
                       f"scripted model) — ready in {time.monotonic() - started:.1f}s"))
    try:
        agents = [await palot.agents.spawn(sample, prompt, title=title) for title, prompt in TASKS]
        agents = await _watch(palot, agents, console, timeout)
        return await _review(palot, agents, sample, console, keep, started)
    finally:
        await palot.close()
        if not keep:
            await palot.stop_server()


async def _watch(palot: Palot, agents: list[Agent], console: Console, timeout: float) -> list[Agent]:
    """Stream activity lines and a live status table until both agents settle."""
    ids = {a.session_id: a for a in agents}
    shown: set[str] = set()
    deadline = time.monotonic() + timeout
    with palot.hub.subscribe(types=["message.part.updated", AGENT_UPDATED]) as sub, \
            Live(render.agents_table(agents, compact=True), console=console, refresh_per_second=8) as live:
        wanted = {a.id for a in agents}
        while True:
            mine = sorted((a for a in palot.agents.list(include_external=False) if a.id in wanted),
                          key=lambda a: a.created_at)
            live.update(render.agents_table(mine, compact=True))
            if all(a.status in SETTLED for a in mine) or time.monotonic() > deadline:
                break
            try:
                event = await sub.get(timeout=0.5)
            except asyncio.TimeoutError:
                continue
            if event.type != "message.part.updated":
                continue
            part = Part.model_validate(event.payload.properties.get("part", {}))
            owner = ids.get(part.sessionID)
            done = part.type == "tool" and (part.state or {}).get("status") in ("completed", "error")
            if owner is None or not done or part.id in shown:
                continue
            shown.add(part.id)
            line = part_activity(part, owner.environment.directory)
            if line:
                t, kind, verb, target, summary, st = line
                item = ActivityItem(index=0, id=part.id, time=t or time.time(), kind=kind, verb=verb,
                                    target=target, summary=summary, state=st)
                live.console.print(Text(f"{owner.title:>13} ", "bold cyan"), render.activity_line(item))
    console.print()
    return mine


async def _review(palot: Palot, agents: list[Agent], sample: Path, console: Console, keep: bool,
                  started: float) -> int:
    failed = [a for a in agents if a.status != AgentStatus.COMPLETED]
    for agent in agents:
        diff = await palot.agents.diff(agent.id)
        console.print(Panel(Group(render.diff_summary(diff), render.patch_text(diff.patch)),
                            title=Text(f"{agent.title} — {agent.environment.branch}"), expand=False))
    first = agents[0]
    applied = await palot.agents.apply(first.id)
    console.print(Text.assemble("applied ", (first.title, "bold"), f" to your checkout: {', '.join(applied)}"))
    console.print(Text(_git(sample, "status", "--short").rstrip()))
    for agent in agents:
        await palot.agents.archive(agent.id)
    console.print("archived both agents: worktrees removed, branches kept")

    console.rule("where everything is")
    for what, where in (
        ("sample project (agent 1 applied)", str(sample)),
        ("agent branches", ", ".join(a.environment.branch or "" for a in agents)),
        ("Palot store (SQLite)", str(palot.paths.store)),
        ("server log", str(palot.paths.server_dir / "opencode.log")),
        ("isolated OpenCode data", str(palot.paths.isolated_opencode_home)),
        ("look again", f"PALOT_HOME={palot.paths.home} palot agents list --all"),
        ("server", "still running (--keep): stop it with the same PALOT_HOME and `palot down`" if keep else "stopped"),
    ):
        console.print(Text.assemble((what, "bold"), f": {where}"), soft_wrap=True)
    for agent in agents:
        usage = await palot.agents.get(agent.id)
        console.print(Text.assemble(f"{agent.title}: ", render.status_text(agent.status),
                                    f"  {usage.tokens:,} tokens  ${usage.cost:.4f}"))
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")
    if failed:
        console.print(Text(f"{len(failed)} agent(s) did not complete: "
                           + "; ".join(f"{a.title}: {a.status.value} {a.error or ''}" for a in failed), "red"))
        return 1
    return 0
