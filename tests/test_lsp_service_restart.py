"""The editor across a restart of the Palot service: ``palot-lsp`` starts it again and follows it (``resync``)."""

from __future__ import annotations

from pathlib import Path

from conftest import make_repo
from lsp_support import README, diagnostics, eventually, execute, open_file, start_lsp
from service_support import start_service, stop_service, wait_ready

from palot import PalotPaths


async def test_the_editor_brings_the_service_back_and_keeps_showing_what_agents_do(tmp_path: Path,
                                                                                   opencode_bin: Path):
    home = tmp_path / "home"
    workspace = make_repo(tmp_path / "project", {"README.md": README})
    proc = start_service(home)
    first_client = await wait_ready(home, proc)
    editor = await start_lsp(PalotPaths(home), workspace)
    try:
        uri = open_file(editor, workspace / "README.md")
        before = await execute(editor, "palot.spawn", {"prompt": "edit readme", "title": "Before"})
        await eventually(lambda: diagnostics(editor, uri, "agent-change"), what="the first agent's edit")

        # The service stops (OpenCode keeps running); the editor's client starts it again, as it was.
        assert await first_client.stop_service()
        await first_client.close()
        proc.wait(30)
        second_client = await wait_ready(home, timeout=180)
        try:
            status = await execute(editor, "palot.status")
            assert status["pid"] != proc.pid
            # An agent started by another client after the restart shows up in the editor: the events flow again.
            after = await second_client.spawn(workspace, "edit readme", title="After")
            [warning] = await eventually(lambda: diagnostics(editor, uri, "agent-overlap"), 90, "the overlap warning")
            assert before["id"] in warning.message and after.id in warning.message
            await second_client.archive(after.id)
            await eventually(lambda: not diagnostics(editor, uri, "agent-overlap")
                             and len(diagnostics(editor, uri, "agent-change")) == 1, 30, "the archive to show")
        finally:
            await second_client.close()
    finally:
        await editor.shutdown_session()
        await editor.stop()
        await stop_service(home)
