"""The Palot language server: one ``PalotClient`` of the Palot service per editor, and what the editor is shown.

``PalotLanguageServer`` owns the client's start and stop, messages and work-done progress, publishing each open
file's diagnostics, and running a command (``commands.py``) with its errors mapped to LSP errors;
``create_server`` registers every handler (``handlers.py``) and command. Its questions to the person are in
``questions.py``, its view of the workspace's folders and documents in ``workspace.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
)
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from palot.api import Agent, AgentStatus, PalotError
from palot.client import PalotClient
from palot.errors import InvalidInput

from .arguments import Command, InvalidArguments, parse_arguments, quiet
from .changes import agent_label
from .commands import COMMANDS
from .diagnostics import file_diagnostics
from .handlers import FEATURES, to_code_action, to_code_lens
from .live import LiveChanges
from .protocol import PalotProtocol, error_data, request_failed
from .questions import Questions
from .workspace import CLIENT_TIMEOUT, Workspace, repository_of

#: The names other modules import from here (the handlers, questions and workspace moved beside it).
__all__ = ["AGENT_NOTIFICATION", "CLIENT_TIMEOUT", "FEATURES", "PalotLanguageServer", "WorkDone", "create_server",
           "repository_of", "to_code_action", "to_code_lens"]

log = logging.getLogger(__name__)

try:
    __version__ = importlib.metadata.version("palot")
except importlib.metadata.PackageNotFoundError:  # a source checkout without an install
    __version__ = "0"

#: The notification an editor asks for with ``initializationOptions: {"agentEvents": true}`` (the VS Code
#: extension's Agents view): ``{"id", "agent": the view, or null once it is no longer shown}``.
AGENT_NOTIFICATION = "palot/agent"


class WorkDone:
    """One ``$/progress`` run; ``report`` is safe to call when the client shows no progress."""

    def __init__(self, server: PalotLanguageServer, token: lsp.ProgressToken | None) -> None:
        self.server, self.token = server, token

    def report(self, message: str) -> None:
        if self.token is not None:
            self.server.work_done_progress.report(self.token, lsp.WorkDoneProgressReport(message=message))


class PalotLanguageServer(Questions, Workspace, LanguageServer):
    """Holds a client of the Palot service of ``$PALOT_HOME`` (started when none runs) and what the editor shows."""

    def __init__(self, *, debounce: float = 0.02) -> None:
        super().__init__("palot-lsp", __version__, protocol_cls=PalotProtocol)
        self.palot: PalotClient | None = None
        self.live = LiveChanges(on_file_changed=self.schedule_publish, on_status=self.on_status,
                                on_notification=self.on_notification, on_agent=self.on_agent,
                                debounce=debounce)
        self.agent_events = False  # the editor asked for AGENT_NOTIFICATION (initializationOptions)
        self._asking: set[asyncio.Task[None]] = set()  # questions to the person (showMessageRequest) open now
        self._starting: asyncio.Task[None] | None = None
        self._start_error: PalotError | None = None
        self._published: dict[str, list[lsp.Diagnostic]] = {}
        self._to_publish: set[str] = set()

    # --- the service -----------------------------------------------------------

    def start_palot(self) -> None:
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._start(), name="palot-lsp-start")

    async def _start(self) -> None:
        client = PalotClient(progress=lambda line: self.log(line, lsp.MessageType.Log))
        try:
            home = client.paths.home
            if home.exists() and not home.is_dir():  # say so now, not as "the service did not start"
                raise InvalidInput(f"Palot cannot use {home} as its data directory (it is a file)",
                                   "set PALOT_HOME to a folder you can write to, or unset it")
            status = await client.connect()
        except Exception as e:
            self._fail(e)
            with contextlib.suppress(Exception):
                await client.close()
            return
        self.palot = client
        await self.live.start(client)
        self.log(f"Palot service {status.palot_version} (pid {status.pid}) of {status.home}")

    def _fail(self, error: Exception) -> None:
        if not isinstance(error, PalotError):
            log.exception("Palot could not start")
            error = PalotError(f"{type(error).__name__}: {error}", "see the language server's log (--log-file)")
        self._start_error = error
        self.show(f"Palot could not start: {error}", lsp.MessageType.Error)

    async def palot_ready(self) -> PalotClient:
        """The connected client; its start error (with the fix) if the service could not be reached."""
        self.start_palot()
        assert self._starting is not None
        await asyncio.shield(self._starting)
        if self.palot is None:
            raise self._start_error or PalotError("Palot did not start", "see the language server's log")
        return self.palot

    async def stop_palot(self) -> None:
        for task in list(self._asking):
            task.cancel()
        await self.live.stop()
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self.palot is not None:
            await self.palot.close()
            self.palot = None

    # --- talking to the editor ---------------------------------------------------

    def show(self, message: str, type: lsp.MessageType = lsp.MessageType.Info) -> None:
        self.window_show_message(lsp.ShowMessageParams(type=type, message=message))

    def log(self, message: str, type: lsp.MessageType = lsp.MessageType.Info) -> None:
        self.window_log_message(lsp.LogMessageParams(type=type, message=message))

    def on_agent(self, agent_id: str, agent: Agent | None) -> None:
        """An agent's new view (None: no longer shown) to an editor that shows agents itself."""
        if self.agent_events and (agent is None or self.in_workspace(agent)):
            self.protocol.notify(AGENT_NOTIFICATION, {"id": agent_id,
                                                      "agent": agent.model_dump(mode="json") if agent else None})

    def on_status(self, agent: Agent, before: Agent | None) -> None:
        """A word in the editor when a workspace agent finishes, fails or needs a person."""
        if before is None or not self.in_workspace(agent):
            return
        self.log(f"agent {agent.id}: {before.status.value} → {agent.status.value}")
        if before.status == agent.status:
            return
        if before.status == AgentStatus.MIGRATING and agent.status != AgentStatus.FAILED:
            return  # a move ended: the agent's turn did not just finish (palot.move says where it went)
        label = agent_label(agent)
        if agent.status == AgentStatus.COMPLETED:
            self.show(f"Agent {label} completed. Review it with “Show the agent's change”, or apply it.")
        elif agent.status == AgentStatus.FAILED:
            self.show(f"Agent {label} failed: {agent.error}", lsp.MessageType.Error)
        elif agent.status == AgentStatus.WAITING and agent.permissions:
            asks = "; ".join(p.summary for p in agent.permissions)
            self.show(f"Agent {label} is waiting for permission: {asks}", lsp.MessageType.Warning)

    # --- diagnostics, documents and progress ----------------------------------------------

    def schedule_publish(self, uri: str) -> None:
        """Publish the file's diagnostics soon, once per burst of changes."""
        if not self._to_publish:
            asyncio.get_running_loop().call_soon(self._publish_pending)
        self._to_publish.add(uri)

    def _publish_pending(self) -> None:
        uris, self._to_publish = self._to_publish, set()
        for uri in uris:
            self.publish(uri)

    def publish(self, uri: str) -> None:
        if not self.live.is_open(uri):
            return
        diagnostics = file_diagnostics(self.live.changes(uri), self.live.overlaps(uri), self.live.permissions(uri),
                                       self.document_lines(uri), self.units)
        if diagnostics == self._published.get(uri, []):
            return
        self._published[uri] = diagnostics
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))
        self.refresh_lenses()

    def refresh_lenses(self) -> None:
        """Ask the editor to re-read code lenses (when it supports being asked)."""
        workspace = self.client_capabilities.workspace
        lens = workspace.code_lens if workspace else None
        if lens is not None and lens.refresh_support:
            asked = self.workspace_code_lens_refresh(None)
            asked.add_done_callback(lambda done: done.exception())  # an editor that refuses: nothing to do

    def clear(self, uri: str) -> None:
        if self._published.pop(uri, None):
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    async def show_document(self, uri: str, selection: lsp.Range | None, *, what: str) -> bool:
        """Open ``uri`` in the editor; editors without ``window/showDocument`` get its path in a message."""
        window = self.client_capabilities.window
        if window is not None and window.show_document is not None and window.show_document.support:
            try:
                result = await asyncio.wait_for(self.window_show_document_async(
                    lsp.ShowDocumentParams(uri=uri, take_focus=True, selection=selection)), CLIENT_TIMEOUT)
                if result is not None and result.success:
                    return True
            except (TimeoutError, JsonRpcException) as e:  # the editor could not: say where it is instead
                self.log(f"could not show {uri}: {e!r}", lsp.MessageType.Warning)
        self.show(f"{what}: {to_fs_path(uri) or uri}")
        return False

    @contextlib.asynccontextmanager
    async def progress(self, title: str, token: lsp.ProgressToken | None) -> AsyncIterator[WorkDone]:
        """``$/progress`` begin … end around a long operation, on the client's token or one we create."""
        window = self.client_capabilities.window
        if token is None and window is not None and window.work_done_progress:
            token = f"palot-{uuid.uuid4().hex[:12]}"
            try:
                await asyncio.wait_for(self.work_done_progress.create_async(token), CLIENT_TIMEOUT)
            except Exception as e:  # the editor refused or did not answer: carry on without progress
                self.log(f"no progress for {title}: {e}", lsp.MessageType.Log)
                token = None
        if token is None:
            yield WorkDone(self, None)
            return
        self.work_done_progress.begin(token, lsp.WorkDoneProgressBegin(title=title, cancellable=False))
        outcome = "failed"
        try:
            yield WorkDone(self, token)
            outcome = "done"
        finally:
            self.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=outcome))
            self.work_done_progress.tokens.pop(token, None)

    # --- commands ----------------------------------------------------------------------

    def resolves_commands(self) -> bool:
        """Whether the client fills in a code action's command with ``codeAction/resolve``."""
        code_action = self.client_capabilities.text_document and self.client_capabilities.text_document.code_action
        support = code_action.resolve_support if code_action else None
        return bool(support and "command" in support.properties)

    async def run_command(self, command: Command, params: lsp.ExecuteCommandParams) -> Any:
        """Check the arguments, run the command (with progress when it is long), map errors to LSP errors."""
        try:
            args = parse_arguments(command, params.arguments)
        except InvalidArguments as e:
            raise JsonRpcInvalidParams(message=str(e)) from None
        self.log(f"{command.name} {json.dumps(args, default=str)}", lsp.MessageType.Log)
        try:
            if command.progress is None:
                return await command.run(self, args, quiet)
            async with self.progress(command.progress, params.work_done_token) as work:
                return await command.run(self, args, work.report)
        except InvalidInput as e:  # the api's checks of the arguments' values
            if e.message.startswith(f"{command.action}: "):
                what = e.message.removeprefix(f"{command.action}: ")
                raise JsonRpcInvalidParams(message=f"{command.name}: {what} — {e.fix}", data=error_data(e)) from None
            self.log(f"{command.name} failed: {e}", lsp.MessageType.Error)
            raise request_failed(e) from None
        except PalotError as e:
            self.log(f"{command.name} failed: {e}", lsp.MessageType.Error)
            raise request_failed(e) from None
        except InvalidArguments as e:
            raise JsonRpcInvalidParams(message=str(e)) from None
        except JsonRpcException:
            raise
        except Exception as e:
            log.exception("%s failed", command.name)
            raise JsonRpcInternalError(message=f"{command.name} failed: {type(e).__name__}: {e}") from None


def _command_handler(command: Command) -> Callable[..., Any]:
    async def run(ls: PalotLanguageServer, params: lsp.ExecuteCommandParams) -> Any:
        return await ls.run_command(command, params)

    return run


def create_server(*, debounce: float = 0.02) -> PalotLanguageServer:
    """A server with every feature and command registered."""
    server = PalotLanguageServer(debounce=debounce)
    for method, (handler, options) in FEATURES.items():
        server.feature(method, options)(handler)
    for name, command in COMMANDS.items():
        server.command(name)(_command_handler(command))
    return server
