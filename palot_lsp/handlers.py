"""The language server's protocol handlers, one per method, named for it; :data:`FEATURES` is the table.

Handlers are thin: they read the editor's request, ask ``LiveChanges`` (what agents did to the open files) and
turn the answer into LSP types with the pure builders in ``actions.py`` and ``diagnostics.py``. Commands
(``workspace/executeCommand``) are registered from ``commands.py`` by ``create_server`` in ``server.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.uris import to_fs_path

from .actions import ActionSpec, LensSpec, code_actions, code_lenses
from .commands import COMMANDS
from .diagnostics import hover_markdown, line_range

if TYPE_CHECKING:
    from .server import PalotLanguageServer


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
