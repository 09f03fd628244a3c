"""The readers the event benchmarks time: the bare baseline, and each front end as a recorder of when it
showed what.

Not a test module: ``test_bench_events.py`` and ``test_bench_jupyter.py`` import it by name. ``Bare``
reads OpenCode's ``/global/event`` directly. Every recorder is started against a
running Palot service (its home), records ``perf_counter``/``time.time`` pairs as it sees events, and is
stopped after the round. What each records:

* ``activity[agent]``: one time per Palot ``agent.activity`` event (the service's stream, the CLI);
* ``completed[agent]``: when it first showed the agent completed (stream, CLI, notebook cell, MCP);
* ``edited[agent]``: when it first showed an agent's file change (the stream's ``agent.file``; the
  language server's diagnostics through ``LspRecorder.shown``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from benchlib import BareStream, event_key, session_of

from palot import api
from palot.client import PalotClient

BIN = Path(sys.executable).parent
Stamp = tuple[float, float]  # (perf_counter, wall clock)
ACTIVITY_TYPES = {"message.updated", "message.part.updated", "message.part.removed", "todo.updated"}


def _now() -> Stamp:
    return time.perf_counter(), time.time()


class Bare:
    """The baseline reader's sightings in one round: activity events and first idle per session, and the
    first ``file.edited`` per directory."""

    def __init__(self, url: str, auth: httpx.Auth) -> None:
        self.activity: dict[str, list[tuple[float, float, str]]] = {}
        self.idle: dict[str, tuple[float, float, str]] = {}
        self.edited: dict[str, tuple[float, float, str]] = {}
        self.since = float("inf")
        self.events = 0
        self.stream = BareStream(url, auth, self._on)

    def _on(self, payload: dict[str, Any], directory: str | None, perf: float, wall: float) -> None:
        if perf < self.since:
            return
        self.events += 1
        key, kind = event_key(payload), str(payload.get("type"))
        if key is None:
            return
        sid = session_of(payload)
        props = payload.get("properties") or {}
        if kind in ACTIVITY_TYPES and sid:
            self.activity.setdefault(sid, []).append((perf, wall, key))
        elif sid and (kind == "session.idle" or (kind == "session.status"
                                                  and (props.get("status") or {}).get("type") == "idle")):
            self.idle.setdefault(sid, (perf, wall, key))
        elif kind == "file.edited" and directory:
            self.edited.setdefault(directory, (perf, wall, key))


class Recorder:
    """What one front end showed, and when."""

    name = "front end"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.activity: dict[str, list[Stamp]] = {}
        self.completed: dict[str, Stamp] = {}
        self.edited: dict[str, Stamp] = {}
        self.since = float("inf")  # perf time the round started: earlier sightings are not recorded

    def begin(self) -> None:
        self.since = time.perf_counter()

    def saw_activity(self, agent_id: str, stamp: Stamp) -> None:
        if stamp[0] >= self.since:
            self.activity.setdefault(agent_id, []).append(stamp)

    def saw_completed(self, agent_id: str, stamp: Stamp) -> None:
        if stamp[0] >= self.since:
            self.completed.setdefault(agent_id, stamp)

    def saw_event(self, event: api.Event, stamp: Stamp) -> None:
        if event.agent_id is None:
            return
        if event.type == api.ACTIVITY:
            self.saw_activity(event.agent_id, stamp)
        elif event.type == api.AGENT_UPDATED and event.agent is not None \
                and event.agent.status == api.AgentStatus.COMPLETED:
            self.saw_completed(event.agent_id, stamp)
        elif event.type == api.FILE_CHANGED and stamp[0] >= self.since:
            self.edited.setdefault(event.agent_id, stamp)

    async def start(self, agent_ids: list[str]) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


class StreamRecorder(Recorder):
    """``PalotClient.events()``: the service's stream as every front end receives it."""

    name = "service stream (PalotClient.events)"

    async def start(self, agent_ids: list[str]) -> None:
        self.client = PalotClient(self.home, autostart=False)
        await self.client.connect()
        ready = asyncio.Event()

        async def run() -> None:
            stream = self.client.events()
            first = asyncio.get_running_loop().call_later(0.5, ready.set)  # no event needed to be connected
            async for event in stream:
                self.saw_event(event, _now())
            first.cancel()

        self.task = asyncio.create_task(run(), name="bench-stream")
        await ready.wait()

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.client.close()


class CliRecorder(Recorder):
    """``palot agents watch --json`` as a subprocess: each line on its stdout, as it is read."""

    name = "CLI (palot agents watch)"

    async def start(self, agent_ids: list[str]) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            str(BIN / "palot"), "agents", "watch", "--json", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PALOT_HOME": str(self.home)}, start_new_session=True)
        self.replayed: set[str] = set()
        self.lines = 0
        self.task = asyncio.create_task(self._read(), name="bench-cli")
        deadline = time.monotonic() + 60
        while not set(agent_ids) <= self.replayed:  # the replay of every agent: the watch is connected
            assert self.proc.returncode is None, await self._stderr()
            assert time.monotonic() < deadline, "palot agents watch did not list the agents in 60 s"
            await asyncio.sleep(0.05)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            stamp = _now()
            self.lines += 1
            event = api.Event.model_validate_json(line)
            if event.agent_id:
                self.replayed.add(event.agent_id)
            self.saw_event(event, stamp)

    async def _stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode(errors="replace")

    async def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        await asyncio.wait_for(self.proc.wait(), 10)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class NotebookRecorder(Recorder):
    """The notebook dashboard (``Dashboard(client)``, no kernel): an agent row's status cell changing."""

    name = "notebook (Dashboard status cell)"

    async def start(self, agent_ids: list[str]) -> None:
        from palot_jupyter import Dashboard

        self.client = PalotClient(self.home, autostart=False)
        self.dash = Dashboard(self.client)
        await self.dash.start()
        deadline = time.monotonic() + 60
        while not set(agent_ids) <= set(self.dash.agent_list.rows):
            assert time.monotonic() < deadline, "the dashboard did not list the agents in 60 s"
            await asyncio.sleep(0.05)
        for agent_id in agent_ids:
            self._watch(agent_id)

    def _watch(self, agent_id: str) -> None:
        def on_status(change: dict[str, Any]) -> None:
            if "palot-st-completed" in str(change["new"]):
                self.saw_completed(agent_id, _now())

        self.dash.agent_list.rows[agent_id].cells["status"].observe(on_status, names="value")

    async def stop(self) -> None:
        await self.dash.aclose()
        await self.client.close()


class McpRecorder(Recorder):
    """``palot-mcp`` over stdio, a handshake-era client subscribed to every agent's resource:
    ``notifications/resources/updated`` for ``palot://agents/<id>``.

    MCP says only *which* resource changed, so "completed" is the first update of the agent's resource
    at or after the moment OpenCode's idle event reached the bare reader (see ``first_after``)."""

    name = "MCP (notifications/resources/updated)"

    async def start(self, agent_ids: list[str]) -> None:
        from mcp import Client, StdioServerParameters

        self.updates: dict[str, list[Stamp]] = {}

        async def on_message(message: Any) -> None:
            if getattr(message, "method", None) == "notifications/resources/updated":
                stamp = _now()
                uri = str(getattr(getattr(message, "params", None), "uri", ""))
                if uri.startswith("palot://agents/") and uri.count("/") == 3:
                    self.updates.setdefault(uri.rsplit("/", 1)[1], []).append(stamp)

        server = StdioServerParameters(command=str(BIN / "palot-mcp"), args=[],
                                       env={**os.environ, "PALOT_HOME": str(self.home)})
        self._stack = contextlib.AsyncExitStack()
        self.mcp = await self._stack.enter_async_context(
            Client(server, mode="legacy", message_handler=on_message, read_timeout_seconds=120))
        for agent_id in agent_ids:
            await self.mcp.subscribe_resource(f"palot://agents/{agent_id}")

    def first_after(self, agent_id: str, perf: float) -> Stamp | None:
        return next((s for s in self.updates.get(agent_id, []) if s[0] >= perf), None)

    async def stop(self) -> None:
        await self._stack.aclose()


class LspRecorder(Recorder):
    """``palot-lsp`` over stdio (a pytest-lsp client) with ``bench.txt`` of ``folder`` open:
    the first ``textDocument/publishDiagnostics`` that shows an agent's change of it."""

    name = "LSP (publishDiagnostics)"

    def __init__(self, home: Path, folder: Path) -> None:
        super().__init__(home)
        self.folder = folder
        self.published: list[tuple[Stamp, Any]] = []

    async def start(self, agent_ids: list[str]) -> None:
        from lsprotocol import types as lsp
        from pygls.protocol import default_converter
        from pytest_lsp import ClientServerConfig, LanguageClient
        from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, client_capabilities, register_lsp_features

        published = self.published

        def factory() -> LanguageClient:
            client = LanguageClient(converter_factory=default_converter)

            def on_publish(ls: LanguageClient, params: lsp.PublishDiagnosticsParams) -> None:
                published.append((_now(), params))
                ls.diagnostics[params.uri] = params.diagnostics

            register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES,
                                           lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: on_publish})
            return client

        config = ClientServerConfig(server_command=[str(BIN / "palot-lsp")], client_factory=factory,
                                    server_env={**os.environ, "PALOT_HOME": str(self.home)})
        self.lsp = await config.start()
        uri = self.folder.as_uri()
        await self.lsp.initialize_session(lsp.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"), root_uri=uri,
            workspace_folders=[lsp.WorkspaceFolder(uri=uri, name=self.folder.name)]))
        path = self.folder / "bench.txt"
        self.uri = path.as_uri()
        self.lsp.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(
            uri=self.uri, language_id="plaintext", version=1, text=path.read_text())))
        await asyncio.sleep(1.0)  # the server has read the agents and published the file's first diagnostics

    def shown(self, agent_id: str) -> Stamp | None:
        """When a diagnostic of the open file first named ``agent_id``."""
        for stamp, params in self.published:
            if params.uri == self.uri and stamp[0] >= self.since \
                    and any(agent_id in repr(d) for d in params.diagnostics):
                return stamp
        return None

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.lsp.shutdown_session(), 10)
        await self.lsp.stop()
