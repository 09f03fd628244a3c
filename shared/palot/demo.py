"""``palot demo``: two agents on a sample project, offline, with the scripted model.

Everything happens under ``<data dir>/demo``, its own ``PALOT_HOME``: the demo starts a Palot service
there (``palot serve --scripted demo --isolated``: its own store, worktrees and isolated OpenCode server),
drives it with :class:`palot.client.PalotClient` like any front end, and stops it at the end. It never
touches the user's real agents, service or OpenCode config. Each run starts from a new store, worktrees and
sample project; the isolated OpenCode's own data is kept from run to run (it is seconds of set-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from . import api, render
from .admin import start_service_process, wait_for_service
from .api import Agent, AgentStatus
from .client import PalotClient
from .endpoint import Endpoint
from .install import ensure_opencode, install_ripgrep
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
SAMPLE_DATE = "2026-01-01T12:00:00Z"
SETTLED = {AgentStatus.COMPLETED, AgentStatus.FAILED, AgentStatus.PAUSED, AgentStatus.WAITING}


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, env={**os.environ, **(env or {})}).stdout


def make_sample_project(path: Path) -> Path:
    """A small git repository for the demo agents."""
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", "Palot Demo")
    _git(path, "config", "user.email", "demo@palot.invalid")
    for name, content in SAMPLE_FILES.items():
        (path / name).write_text(content)
    _git(path, "add", "-A")
    # The same commit every run: OpenCode knows a project by its first commit, so the data it keeps of the
    # sample project (see _reset) serves the next run too.
    _git(path, "commit", "-q", "-m", "Sample project",
         env={"GIT_AUTHOR_DATE": SAMPLE_DATE, "GIT_COMMITTER_DATE": SAMPLE_DATE})
    return path


def _reset(paths: PalotPaths) -> None:
    """Empty the demo area so every run starts the same way: a new store, worktrees and sample project. Kept:
    the isolated OpenCode's own data (its database, set up on its first start, and what it keeps of the sample
    project), which took seconds to make again at every run."""
    for child in paths.home.iterdir() if paths.home.is_dir() else ():
        if child == paths.isolated_opencode_home:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


async def run_demo(*, keep: bool = False, console: Console | None = None, timeout: float = 90.0) -> int:
    """Run the demo end to end; returns a process exit code."""
    console = console or render.console()
    started = time.monotonic()
    default = PalotPaths.default()
    paths = PalotPaths(default.home / "demo")

    console.rule(Text.assemble(("Palot demo", "bold"), " — two agents, one Palot service, one OpenCode server, offline"))

    def say(message: str) -> None:  # progress lines (paths, URLs) are text, never markup
        console.print(Text(message))

    binary = ensure_opencode(default, progress=say)
    install_ripgrep(say)
    await _stop(paths)
    await asyncio.to_thread(_reset, paths)
    # The service and its OpenCode server start while the sample project is made (they do not need it yet).
    proc = start_service_process(paths, scripted="demo", isolated=True, opencode_bin=binary)
    sample = await asyncio.to_thread(make_sample_project, paths.home / "sample-project")
    console.print(Text.assemble("sample project: ", (str(sample), "bold")))
    client = await wait_for_service(paths, proc, say)
    try:
        status = await client.status()
        console.print(Text(f"Palot service: pid {status.pid} on {Endpoint(paths).socket}; shared OpenCode server: "
                           f"{status.opencode_url} (pid {status.opencode_pid}, password-protected, scripted model) "
                           f"— ready in {time.monotonic() - started:.1f}s"))
        events: asyncio.Queue[api.Event] = asyncio.Queue()
        listener = asyncio.create_task(_listen(client, events))
        try:
            await _attached(client)
            # Both at once: OpenCode sets up each worktree's instance (a few seconds) side by side.
            agents = list(await asyncio.gather(*(client.spawn(sample, prompt, title=title) for title, prompt in TASKS)))
            agents = await _watch(client, agents, events, console, timeout)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        return await _review(client, paths, agents, sample, console, keep, started)
    finally:
        if not keep:
            await client.stop_service(stop_opencode=True)
        await client.close()
        if not keep:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 10)


async def _stop(paths: PalotPaths) -> None:
    """Stop a previous demo's service and OpenCode server (e.g. left by ``--keep``)."""
    client = PalotClient(paths.home, autostart=False)
    try:
        await client.stop_service(stop_opencode=True)
    finally:
        await client.close()
    await ServerManager(paths, supervise=False).stop()


async def _listen(client: PalotClient, events: asyncio.Queue[api.Event]) -> None:
    async for event in client.events():
        events.put_nowait(event)


async def _attached(client: PalotClient, timeout: float = 10.0) -> None:
    """Wait until the event stream is attached, so the agents' first steps are shown too."""
    deadline = time.monotonic() + timeout
    while (await client.status()).clients < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def _watch(client: PalotClient, agents: list[Agent], events: asyncio.Queue[api.Event], console: Console,
                 timeout: float) -> list[Agent]:
    """Stream the agents' finished steps and a live status table until both settle."""
    titles = {a.id: a.title for a in agents}
    shown: set[str] = set()
    deadline = time.monotonic() + timeout
    mine = agents
    with Live(render.agents_table(agents, compact=True), console=console, refresh_per_second=8) as live:
        while True:
            listed = {a.id: a for a in await client.list(include_external=False)}
            mine = [listed.get(a.id, a) for a in agents]
            live.update(render.agents_table(mine, compact=True))
            if all(a.status in SETTLED for a in mine) or time.monotonic() > deadline:
                break
            try:
                event = await asyncio.wait_for(events.get(), 0.5)
            except TimeoutError:
                continue
            item = event.item
            if event.type != api.ACTIVITY or item is None or event.agent_id not in titles:
                continue
            # A step shows once it is done; text and reasoning are in the diffs and the conversation.
            if item.state not in ("completed", "error") or item.kind in ("message", "thinking") or item.id in shown:
                continue
            shown.add(item.id)
            live.console.print(Text(f"{titles[event.agent_id]:>13} ", "bold cyan"), render.activity_line(item))
    console.print()
    return mine


async def _review(client: PalotClient, paths: PalotPaths, agents: list[Agent], sample: Path, console: Console,
                  keep: bool, started: float) -> int:
    failed = [a for a in agents if a.status != AgentStatus.COMPLETED]
    for agent in agents:
        diff = await client.diff(agent.id)
        console.print(Panel(Group(render.diff_summary(diff), render.patch_text(diff.patch)),
                            title=Text(f"{agent.title} — {agent.environment.branch}"), expand=False))
    first = agents[0]
    applied = await client.apply(first.id)
    console.print(Text.assemble("applied ", (first.title, "bold"), f" to your checkout: {', '.join(applied)}"))
    console.print(Text(_git(sample, "status", "--short").rstrip()))
    for agent in agents:
        await client.archive(agent.id)
    console.print("archived both agents: worktrees removed, branches kept")

    console.rule("where everything is")
    for what, where in (
        ("sample project (agent 1 applied)", str(sample)),
        ("agent branches", ", ".join(a.environment.branch or "" for a in agents)),
        ("Palot store (SQLite)", str(paths.store)),
        ("service log", str(Endpoint(paths).log_file)),
        ("server log", str(paths.server_dir / "opencode.log")),
        ("isolated OpenCode data", str(paths.isolated_opencode_home)),
        ("look again", f"PALOT_HOME={paths.home} palot agents list --all"),
        ("service", "still running (--keep): stop it with the same PALOT_HOME and `palot down`" if keep
         else "stopped, with its OpenCode server"),
    ):
        console.print(Text.assemble((what, "bold"), f": {where}"), soft_wrap=True)
    for agent in agents:
        usage = await client.get(agent.id)
        console.print(Text.assemble(f"{agent.title}: ", render.status_text(agent.status),
                                    f"  {usage.tokens:,} tokens  ${usage.cost:.4f}"))
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")
    if failed:
        console.print(Text(f"{len(failed)} agent(s) did not complete: "
                           + "; ".join(f"{a.title}: {a.status.value} {a.error or ''}" for a in failed), "red"))
        return 1
    return 0
