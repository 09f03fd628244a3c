"""The Palot language server: one ``PalotClient`` of the Palot service per editor, and a handler per method.

Handlers are thin: they read the editor's request, ask ``LiveChanges`` (what
agents did to the open files) or run a command (``commands.py``), and turn
the answer into LSP types with the pure builders in ``actions.py`` and
``diagnostics.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
)
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from palot import api
from palot.api import Agent, AgentStatus, PalotError
from palot.client import PalotClient
from palot.errors import InvalidInput, InvalidState

from . import prompts
from . import actions as names
from .actions import (
    REPLY_CHOICES,
    ActionSpec,
    LensSpec,
    code_actions,
    code_lenses,
    inbox_choices,
    inbox_question,
    notification_button,
    notification_text,
    request_lines,
    template_choices,
    template_spawn,
    template_usage,
)
from .changes import agent_label
from .commands import COMMANDS, Command, InvalidArguments, inbox_lines, parse_arguments
from .diagnostics import file_diagnostics, hover_markdown, line_range
from .live import LiveChanges
from .protocol import PalotProtocol, error_data, request_failed

log = logging.getLogger(__name__)

try:
    __version__ = importlib.metadata.version("palot")
except importlib.metadata.PackageNotFoundError:  # a source checkout without an install
    __version__ = "0"

#: How long to wait for the editor to answer a request of ours (open a document, create a progress token).
CLIENT_TIMEOUT = 15.0
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


def _quiet(_line: str) -> None:
    pass


class PalotLanguageServer(LanguageServer):
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

    # --- notifications and questions ------------------------------------------------------

    def on_notification(self, note: api.Notification) -> None:
        """A notification of the service: "needs you" asks, with a button for the next step; "done" tells."""
        if self._said_by_status(note):
            return
        if note.kind == "needs_you":
            self.ask(self._needs_you(note))
        else:
            self.show(notification_text(note))

    def _said_by_status(self, note: api.Notification) -> bool:
        """A workspace agent's completion or failure: ``on_status`` has said it already."""
        agents = [self.live.agents.get(a) for a in note.agent_ids]
        return note.reason in ("completed", "failed") and bool(agents) and all(
            a is not None and self.in_workspace(a) for a in agents)

    async def _needs_you(self, note: api.Notification) -> None:
        text = notification_text(note)
        button = notification_button(note)
        if button is None:
            self.show(text + (f"\n→ {note.action}" if note.action else ""), lsp.MessageType.Warning)
            return
        picked = await self.question(text, [button.title], fallback=f"{text}\n→ {note.action}")
        if picked == button.title:
            await self.press(button)

    def ask(self, question: Any) -> None:
        """Ask the person in the background: a command's answer never waits for them."""
        task = asyncio.get_running_loop().create_task(question, name="palot-lsp-ask")
        self._asking.add(task)
        task.add_done_callback(self._asked)

    def _asked(self, task: asyncio.Task[None]) -> None:
        self._asking.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("a question to the person failed", exc_info=error)

    async def question(self, message: str, choices: list[str], *, fallback: str,
                       type: lsp.MessageType = lsp.MessageType.Warning) -> str | None:
        """``window/showMessageRequest`` with ``choices`` as buttons: the title picked, or None (dismissed).
        An editor that cannot ask gets ``fallback`` as a message."""
        try:
            picked = await self.window_show_message_request_async(lsp.ShowMessageRequestParams(
                type=type, message=message, actions=[lsp.MessageActionItem(title=c) for c in choices]))
        except JsonRpcException as e:
            self.log(f"could not ask ({e!r}); said it instead", lsp.MessageType.Log)
            self.show(fallback, type)
            return None
        return picked.title if picked is not None else None

    async def press(self, button: ActionSpec) -> None:
        """Run the command of a button the person pressed; its failure is said, with the fix."""
        command = COMMANDS[button.command]
        try:
            result = await command.run(self, parse_arguments(command, [button.arguments]), _quiet)
        except (PalotError, InvalidArguments) as e:
            self.show(f"{button.title} failed: {e}", lsp.MessageType.Error)
            return
        if button.command == names.GET:
            agent = Agent.model_validate(result)
            more = agent.error or agent.pause_reason
            self.show(f"Agent {agent_label(agent)} is {agent.status.value}" + (f": {more}" if more else "") + ".")
        elif button.command == names.MOVES and result:
            last = result[-1]
            self.show(f"Its last move, to a {last['target_type']}: {last['state']}"
                      + (f" ({last['error']})" if last.get("error") else ""))

    def pick_inbox(self, items: list[api.InboxItem]) -> None:
        """Offer the oldest pending requests as buttons; answer the one picked (once, always or reject)."""
        self.ask(self._pick_inbox(items))

    async def _pick_inbox(self, items: list[api.InboxItem]) -> None:
        choices = inbox_choices(items)
        count = f"{len(items)} permission request{'s' if len(items) != 1 else ''} wait for you"
        shown = f" (the oldest {len(choices)} here)" if len(choices) < len(items) else ""
        picked = await self.question(f"{count}{shown}: which do you answer?", list(choices),
                                     fallback=f"{count}:\n{inbox_lines(items)}")
        item = choices.get(picked or "")
        if item is None:
            return
        reply = await self.question(inbox_question(item), list(REPLY_CHOICES), fallback=inbox_question(item))
        if reply not in REPLY_CHOICES:
            return
        await self.press(ActionSpec(reply, lsp.CodeActionKind.Empty, names.REPLY_INBOX,
                                    {"reply": REPLY_CHOICES[reply], "permission_ids": [item.permission_id]}))

    def pick_template(self, templates: list[api.Template]) -> None:
        """Offer the templates as buttons; the picked one spawns an agent in the workspace's project (one that
        needs variables says how to give them: an editor's buttons cannot ask for text)."""
        self.ask(self._pick_template(templates))

    async def _pick_template(self, templates: list[api.Template]) -> None:
        choices = template_choices(templates)
        listing = "\n".join(choices)
        picked = await self.question("Spawn an agent from which template?", list(choices),
                                     fallback=f"Prompt templates:\n{listing}", type=lsp.MessageType.Info)
        template = choices.get(picked or "")
        if template is None:
            return
        if template.variables:
            self.show(template_usage(template))
            return
        try:
            project = template.project or self.default_project()
        except InvalidInput as e:
            self.show(f"Spawn from {template.name} failed: {e}", lsp.MessageType.Error)
            return
        await self.press(template_spawn(template, project))

    def folder_of(self, uri: str) -> str | None:
        """The folder of a file (a spawn's project, when no other is given)."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        return os.path.dirname(path) if path else None

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

    # --- the workspace ---------------------------------------------------------------

    def folders(self) -> list[str]:
        """Workspace folders (or the root) as resolved paths: each maps to the Palot project holding it."""
        uris = [f.uri for f in self.workspace.folders.values()] or (
            [self.workspace.root_uri] if self.workspace.root_uri else [])
        return [os.path.realpath(p) for p in (to_fs_path(u) for u in uris) if p]

    def in_workspace(self, agent: Agent) -> bool:
        folders = self.folders()
        project = os.path.realpath(agent.project_path)
        return not folders or any(
            project == f or f.startswith(project + os.sep) or project.startswith(f + os.sep) for f in folders)

    def default_project(self) -> str:
        folders = self.folders()
        if len(folders) == 1:
            return folders[0]
        raise InvalidInput(
            "no workspace folder to spawn the agent in" if not folders
            else f"the workspace has {len(folders)} folders; which project is meant is not clear",
            "pass 'uri' (a file of the project) or 'project' (its path)")

    def document_lines(self, uri: str) -> list[str]:
        try:
            return list(self.workspace.get_text_document(uri).lines)
        except OSError:
            return []

    def units(self, text: str) -> int:
        return self.workspace.position_codec.client_num_units(text)

    async def prompt_with_file(self, prompt: str, uri: str, range_: lsp.Range | None) -> tuple[str, str | None]:
        """The prompt with the file (and the lines of ``range_``) as context, and the file's folder."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        name = uri
        if path is not None:
            root = repository_of(path)
            name = os.path.relpath(path, root) if root else os.path.basename(path)
        if range_ is None:
            return f"{prompt.rstrip()}\n\nThe file: {name}\n", os.path.dirname(path) if path else None
        lines = self.document_lines(uri)
        if not lines and path is not None and not os.path.exists(path):
            raise InvalidInput(f"cannot read {uri}", "pass the uri of an existing file, or leave out 'range'")
        first, last = request_lines(range_)
        text = "".join(lines[first - 1:last])
        language = self.workspace.get_text_document(uri).language_id
        return prompts.with_context(prompt, name, first, last, text, language), os.path.dirname(path) if path else None

    def has_unsaved_changes(self, project: str, path: str) -> bool:
        """Whether ``path`` (relative to ``project``) is open in the editor with text that differs from the file."""
        full = os.path.join(os.path.realpath(project), path)
        uri = self.live.uri_of(full) or Path(full).as_uri()
        document = self.workspace.text_documents.get(uri)
        if document is None:
            return False
        try:
            return Path(full).read_text(encoding="utf-8", errors="surrogateescape") != document.source
        except OSError:
            return True

    def project_document(self, project: str, path: str) -> tuple[str, list[str], int | None]:
        """The uri, lines and version of ``path`` (relative to ``project``) as the editor has it: the open
        document, else the file on disk."""
        full = os.path.join(os.path.realpath(project), path)
        uri = self.live.uri_of(full) or Path(full).as_uri()
        try:
            document = self.workspace.get_text_document(uri)
            return uri, list(document.lines), document.version
        except OSError:
            raise InvalidInput(f"cannot read {full}", "open the file in the editor, then apply again") from None

    async def apply_edit(self, label: str, edit: lsp.WorkspaceEdit) -> None:
        """Have the editor apply ``edit`` (its own change to the buffer, undoable like any other)."""
        workspace = self.client_capabilities.workspace
        if workspace is None or not workspace.apply_edit:
            raise InvalidState("this editor cannot apply edits from a language server",
                               "apply all of the agent's changes instead (palot.apply without 'path')")
        try:
            result = await asyncio.wait_for(self.workspace_apply_edit_async(
                lsp.ApplyWorkspaceEditParams(edit=edit, label=label)), CLIENT_TIMEOUT)
        except (TimeoutError, JsonRpcException) as e:
            raise InvalidState(f"the editor did not apply the change ({e!r})",
                               "apply all of the agent's changes instead (palot.apply without 'path')") from None
        if not result.applied:
            raise InvalidState(f"the editor did not apply the change ({result.failure_reason or 'no reason given'})",
                               "save or close the file, then apply again")

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
                return await command.run(self, args, _quiet)
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


def repository_of(path: str) -> str | None:
    """The closest folder above ``path`` that holds a ``.git`` (a repository or a worktree), if any."""
    folder = os.path.dirname(os.path.realpath(path))
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


# --- handlers, named for the protocol method they serve ------------------------------------


def initialize(ls: PalotLanguageServer, params: lsp.InitializeParams) -> None:
    options = params.initialization_options
    ls.agent_events = isinstance(options, dict) and options.get("agentEvents") is True


async def initialized(ls: PalotLanguageServer, params: lsp.InitializedParams) -> None:
    ls.start_palot()


async def shutdown(ls: PalotLanguageServer, params: None) -> None:
    await ls.stop_palot()


def text_document_did_open(ls: PalotLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    uri = params.text_document.uri
    path = to_fs_path(uri) if uri.startswith("file:") else None
    if path:
        ls.live.open(uri, path)
        ls.schedule_publish(uri)


def text_document_did_close(ls: PalotLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.live.close(params.text_document.uri)
    ls.clear(params.text_document.uri)


def workspace_did_change_workspace_folders(
    ls: PalotLanguageServer, params: lsp.DidChangeWorkspaceFoldersParams
) -> None:
    ls.log(f"workspace folders: {', '.join(ls.folders()) or 'none'}", lsp.MessageType.Log)


def text_document_code_action(ls: PalotLanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    uri = params.text_document.uri
    specs = code_actions(uri, params.range, params.context.diagnostics, ls.live.changes(uri),
                         ls.live.permissions(uri), params.context.only)
    lazy = ls.resolves_commands()
    return [to_code_action(spec, lazy) for spec in specs]


def code_action_resolve(ls: PalotLanguageServer, action: lsp.CodeAction) -> lsp.CodeAction:
    data = action.data if isinstance(action.data, dict) else {}
    if action.command is None and data.get("command") in COMMANDS:
        action.command = lsp.Command(title=action.title, command=data["command"], arguments=data.get("arguments"))
    return action


def text_document_hover(ls: PalotLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
    uri = params.text_document.uri
    found = hover_markdown(ls.live.changes(uri), ls.live.permissions(uri), params.position.line + 1)
    if found is None:
        return None
    markdown, (start, end) = found
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=markdown),
                     range=line_range(start, end, ls.document_lines(uri), ls.units))


def text_document_code_lens(ls: PalotLanguageServer, params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
    uri = params.text_document.uri
    lines = ls.document_lines(uri)
    return [to_code_lens(spec, lines, ls.units) for spec in code_lenses(ls.live.changes(uri))]


def to_code_lens(spec: LensSpec, lines: list[str], units: Callable[[str], int] = len) -> lsp.CodeLens:
    return lsp.CodeLens(range=line_range(spec.line, spec.line, lines, units),
                        command=lsp.Command(title=spec.title, command=spec.command, arguments=[spec.arguments]))


def to_code_action(spec: ActionSpec, lazy: bool) -> lsp.CodeAction:
    """A ``CodeAction``; clients that resolve commands get it without one (``codeAction/resolve`` adds it)."""
    arguments = [spec.arguments]
    command = None if lazy else lsp.Command(title=spec.title, command=spec.command, arguments=arguments)
    return lsp.CodeAction(title=spec.title, kind=spec.kind, diagnostics=list(spec.diagnostics) or None,
                          is_preferred=spec.preferred or None, command=command,
                          data={"command": spec.command, "arguments": arguments})


def _command_handler(command: Command) -> Callable[..., Any]:
    async def run(ls: PalotLanguageServer, params: lsp.ExecuteCommandParams) -> Any:
        return await ls.run_command(command, params)

    return run


#: The server's surface: protocol method → (handler, options).
FEATURES: dict[str, tuple[Callable[..., Any], Any]] = {
    lsp.INITIALIZE: (initialize, None),
    lsp.INITIALIZED: (initialized, None),
    lsp.SHUTDOWN: (shutdown, None),
    lsp.TEXT_DOCUMENT_DID_OPEN: (text_document_did_open, None),
    lsp.TEXT_DOCUMENT_DID_CLOSE: (text_document_did_close, None),
    lsp.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS: (workspace_did_change_workspace_folders, None),
    lsp.TEXT_DOCUMENT_CODE_ACTION: (text_document_code_action, lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.Empty], resolve_provider=True)),
    lsp.CODE_ACTION_RESOLVE: (code_action_resolve, None),
    lsp.TEXT_DOCUMENT_HOVER: (text_document_hover, None),
    lsp.TEXT_DOCUMENT_CODE_LENS: (text_document_code_lens, lsp.CodeLensOptions(resolve_provider=False)),
}


def create_server(*, debounce: float = 0.02) -> PalotLanguageServer:
    """A server with every feature and command registered."""
    server = PalotLanguageServer(debounce=debounce)
    for method, (handler, options) in FEATURES.items():
        server.feature(method, options)(handler)
    for name, command in COMMANDS.items():
        server.command(name)(_command_handler(command))
    return server
