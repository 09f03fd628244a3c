"""The service unloads from the shared OpenCode server a worktree whose agents have settled, once it has been
quiet for ``[housekeeping] release_idle_minutes`` (OpenCode keeps every directory it served in memory), and
never one whose agent waits for you. Real service, real OpenCode read by a bare client of its own event
stream, the scripted model."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

from conftest import make_repo
from palot import api
from palot.opencode.events import EventStream
from palot.paths import PalotPaths
from service_support import running_service
from test_lifecycle import SCRIPT, _done, _waiting

DISPOSED = "server.instance.disposed"
QUIET_SECONDS = 3


async def _disposals(home: Path, into: list[tuple[float, str]]) -> None:
    """Every directory OpenCode unloads, read from its own event stream with the server's credentials."""
    state = json.loads((PalotPaths(home).server_dir / "server.json").read_text())
    import httpx

    auth = httpx.BasicAuth("opencode", state["password"])
    async for event in EventStream(lambda: f"http://127.0.0.1:{state['port']}", auth):
        if event.payload.type == DISPOSED and event.directory:
            into.append((time.monotonic(), event.directory))


async def _until_disposed(disposed: list[tuple[float, str]], directory: str, after: float,
                          timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for at, where in disposed:
            if where == directory and at > after:
                return at
        await asyncio.sleep(0.2)
    raise AssertionError(f"{directory} was not released in {timeout} s; released: {disposed}")


async def test_a_settled_worktree_is_released_after_the_quiet_spell_and_a_waiting_one_never(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "project")
    home.mkdir()
    (home / "settings.toml").write_text(
        f"[housekeeping]\nrelease_idle_minutes = {QUIET_SECONDS / 60}\ncheck_seconds = 0.5\n")
    disposed: list[tuple[float, str]] = []
    async with running_service(home, SCRIPT) as palot:
        reader = asyncio.create_task(_disposals(home, disposed))
        try:
            done = await _done(palot, repo)
            waiting = await _waiting(palot, repo)
            assert done.status == api.AgentStatus.COMPLETED
            released = await _until_disposed(disposed, done.environment.directory, after=0)

            # The waiting agent's request lives only in OpenCode's loaded directory: it is never released.
            await asyncio.sleep(3 * QUIET_SECONDS)
            assert waiting.environment.directory not in {d for _, d in disposed}
            answered = await palot.reply(waiting.id, "once")
            assert (await palot.wait(answered.id, timeout=90)).status == api.AgentStatus.COMPLETED

            # Nothing of the released agent was lost: it takes a new prompt (OpenCode loads the directory
            # again) with its conversation, and is released once more after a new quiet spell.
            assert [d for _, d in disposed].count(done.environment.directory) == 1
            await palot.prompt(done.id, "write a greeting module")
            again = await palot.wait(done.id, timeout=90)
            assert again.status == api.AgentStatus.COMPLETED, again
            users = [m.text for m in await palot.messages(done.id) if m.role == "user"]
            assert users == ["write a greeting module", "write a greeting module"]
            await _until_disposed(disposed, done.environment.directory, after=released)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
