"""Four front ends on one service at once — the CLI, an MCP client over stdio, an editor (pytest-lsp) and a
notebook kernel: an agent spawned from any of them shows up live in the other three, and the OpenCode server
still has one event subscription, the service's."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse
from typing import Any

from conftest import make_repo
from jupyter_client.manager import AsyncKernelManager
from lsp_support import eventually, execute, messages, start_lsp
from mcp import Client
from mcp.client.subscriptions import ResourcesListChanged
from mcp_support import data, stdio_server
from service_support import PALOT, QUIET_MS, Watch, opencode_event_streams, running_service

from palot.paths import PalotPaths



class Notebook:
    """A real Jupyter kernel running the dashboard, as a notebook cell would."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.manager = AsyncKernelManager(kernel_name="python3")

    async def start(self) -> None:
        await self.manager.start_kernel(env={**os.environ, "PALOT_HOME": str(self.home)})
        self.client = self.manager.client()
        self.client.start_channels()
        await self.client.wait_for_ready(timeout=120)
        await self.run("from palot_jupyter import Dashboard\ndash = Dashboard()\nawait dash.start()")

    async def run(self, code: str) -> str:
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        reply = await self.client.execute_interactive(code, timeout=120, output_hook=hook)
        assert reply["content"]["status"] == "ok", "".join(out)
        return "".join(out)

    async def listed(self) -> set[str]:
        return set(json.loads(await self.run("import json; print(json.dumps(sorted(dash.agent_list.rows)))")))

    async def stop(self) -> None:
        try:
            await self.run("await dash.aclose()")
        finally:
            self.client.stop_channels()
            await self.manager.shutdown_kernel(now=True)


async def test_an_agent_spawned_from_any_front_end_shows_up_live_in_the_other_three(tmp_path: Path,
                                                                                     opencode_bin: Path):
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "project")
    async with running_service(home) as service:
        watch = Watch(home)
        editor = await start_lsp(PalotPaths(home), repo)
        notebook = Notebook(home)
        await notebook.start()
        try:
            async with Client(stdio_server(service)) as mcp:
                list_changes: list[object] = []
                async with mcp.listen(resources_list_changed=True) as stream:

                    async def collect() -> None:
                        async for event in stream:
                            if isinstance(event, ResourcesListChanged):
                                list_changes.append(event)

                    collector = asyncio.create_task(collect())
                    attached_at = time.monotonic()
                    status = await service.status()
                    for _ in range(100):  # each front end's own event stream to the service
                        if status.clients >= 4:
                            break
                        await asyncio.sleep(0.1)
                        status = await service.status()
                    assert status.clients == 4 and status.upstream_subscriptions == 1, status
                    port = urlparse(status.opencode_url or "").port
                    assert port is not None

                    async def mcp_listed() -> set[str]:
                        return {a["id"] for a in data(await mcp.call_tool("list_agents", {}))["agents"]}

                    async def seen_by(ident: str, agent_id: str, changes_before: int) -> None:
                        """The agent reaches ``ident``'s view by itself (nobody asks it to look)."""
                        if ident != "cli":
                            await eventually(lambda: agent_id in watch.ids, timeout=60, what="the CLI's watch")
                        if ident != "editor":
                            await eventually(lambda: messages(editor, agent_id), timeout=60,
                                             what="the editor's message")
                        if ident != "mcp":
                            await eventually(lambda: len(list_changes) > changes_before,
                                             timeout=60, what="an MCP list change")
                            assert agent_id in await mcp_listed()
                        if ident != "notebook":
                            for _ in range(120):
                                if agent_id in await notebook.listed():
                                    break
                                await asyncio.sleep(0.5)
                            else:
                                raise AssertionError(f"the notebook never listed {agent_id}")

                    before = len(list_changes)
                    out = subprocess.run([str(PALOT), "agents", "spawn", str(repo), "say hello", "--json"],
                                         env={**os.environ, "PALOT_HOME": str(home)}, capture_output=True,
                                         text=True, timeout=120, stdin=subprocess.DEVNULL)
                    assert out.returncode == 0, out.stderr
                    await seen_by("cli", json.loads(out.stdout)["id"], before)

                    before = len(list_changes)
                    spawned = data(await mcp.call_tool("spawn_agent", {"project": str(repo), "prompt": "say hi"}))
                    await seen_by("mcp", spawned["id"], before)

                    before = len(list_changes)
                    agent = await execute(editor, "palot.spawn", {"prompt": "say hey", "project": str(repo)})
                    await seen_by("editor", agent["id"], before)

                    before = len(list_changes)
                    printed = await notebook.run(
                        f"a = await dash.spawn(project={str(repo)!r}, prompt='say howdy')\nprint(a.id)")
                    await seen_by("notebook", printed.strip().splitlines()[-1], before)

                    after = await service.status()
                    assert after.opencode_pid == status.opencode_pid and after.opencode_restarts == 0
                    assert after.upstream_subscriptions == 1
                    # Counted at the OpenCode server too: a stream opened for any front end would by now have
                    # been quiet long enough to count; there is one, the service's.
                    await asyncio.sleep(max(0.0, QUIET_MS / 1000 + 0.5 - (time.monotonic() - attached_at)))
                    assert len(opencode_event_streams(after.pid, port)) == 1
                    collector.cancel()
        finally:
            await notebook.stop()
            watch.stop()
            await editor.shutdown_session()
            await editor.stop()
