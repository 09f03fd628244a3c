"""Helpers for the language-server tests: one Palot service, a real ``palot-lsp`` driven by pytest-lsp.

``palot_home`` starts one Palot service (``palot serve --scripted --isolated``)
for the whole test session and stops it, with its OpenCode server, when the
session ends; every ``palot-lsp`` finds it through ``$PALOT_HOME`` and every
test works in its own repository. ``lsp`` is a pytest-lsp
client connected to a ``palot-lsp`` subprocess for the test's repository.
Test modules import the fixtures from here (``from lsp_support import ...``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import CORE_SCRIPT, make_repo
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from service_support import start_service, stop_service, wait_ready

from palot import PalotPaths

#: The console script the project installs; an editor runs exactly this.
PALOT_LSP = str(Path(sys.executable).with_name("palot-lsp"))
_HOME = pytest.StashKey[PalotPaths]()

README = "# sample project\n\nTODO: edit readme\n"


async def _ready(home: Path, proc: Any) -> None:
    client = await wait_ready(home, proc)
    await client.close()


def serve(home: Path, request: pytest.FixtureRequest, script: Path = CORE_SCRIPT, *,
          session: bool = False) -> PalotPaths:
    """A running Palot service for ``home`` (scripted model), stopped with its OpenCode after the fixture's
    scope (``session``: at the end of the test session)."""
    proc = start_service(home, script)
    asyncio.run(_ready(home, proc))
    stop = lambda: asyncio.run(stop_service(home, proc))
    (request.config.add_cleanup if session else request.addfinalizer)(stop)
    return PalotPaths(home)


@pytest.fixture(scope="module")
def palot_home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               opencode_bin: Path) -> PalotPaths:
    """The home of the one Palot service (scripted model) of this test session."""
    paths = request.config.stash.get(_HOME, None)
    if paths is None:
        paths = serve(tmp_path_factory.mktemp("palot-lsp") / "home", request, session=True)
        request.config.stash[_HOME] = paths
    return paths


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The test's git repository, opened as the editor's workspace folder."""
    return make_repo(tmp_path / "project", {"README.md": README})


def capabilities(*, resolve_command: bool = True) -> lsp.ClientCapabilities:
    """VS Code's capabilities; by default also resolving code actions' commands lazily."""
    caps = client_capabilities("visual-studio-code")
    assert caps.text_document and caps.text_document.code_action
    if resolve_command:
        caps.text_document.code_action.resolve_support = lsp.ClientCodeActionResolveOptions(
            properties=["edit", "command"])
    return caps


async def start_lsp(home: PalotPaths, folder: Path, caps: lsp.ClientCapabilities | None = None, *,
                    initialization_options: Any = None) -> LanguageClient:
    """A ``palot-lsp`` subprocess using ``home``'s Palot service, initialized with ``folder`` as workspace."""
    config = ClientServerConfig(server_command=[PALOT_LSP],
                                server_env={**os.environ, "PALOT_HOME": str(home.home)})
    client = await config.start()
    assert isinstance(client, LanguageClient)
    client.code_lens_refreshes = 0  # type: ignore[attr-defined]

    @client.feature(lsp.WORKSPACE_CODE_LENS_REFRESH)
    def code_lens_refresh(params: None) -> None:  # VS Code's capabilities say it re-reads code lenses when asked
        client.code_lens_refreshes += 1  # type: ignore[attr-defined]

    # Like an editor, the client answers every question (a "needs you" notification's buttons): by default
    # the person dismisses it; a test that presses a button sets ``client.answer_question``.
    client.questions = []  # type: ignore[attr-defined]
    client.answer_question = lambda params: None  # type: ignore[attr-defined]

    @client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    def show_message_request(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem | None:
        client.questions.append(params)  # type: ignore[attr-defined]
        return client.answer_question(params)  # type: ignore[attr-defined]

    result = await client.initialize_session(lsp.InitializeParams(
        capabilities=caps or capabilities(), root_uri=folder.as_uri(), initialization_options=initialization_options,
        workspace_folders=[lsp.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)],
    ))
    client.initialize_result = result  # type: ignore[attr-defined]
    return client


@pytest.fixture
async def lsp_client(palot_home: PalotPaths, workspace: Path) -> AsyncIterator[LanguageClient]:
    client = await start_lsp(palot_home, workspace)
    try:
        yield client
    finally:
        await client.shutdown_session()
        await client.stop()


# --- driving the editor side ------------------------------------------------------------


def open_file(client: LanguageClient, path: Path, language: str = "markdown") -> str:
    uri = path.as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(uri=uri, language_id=language, version=1, text=path.read_text())))
    return uri


async def execute(client: LanguageClient, command: str, *arguments: Any) -> Any:
    return await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command=command, arguments=list(arguments)))


async def eventually(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def diagnostics(client: LanguageClient, uri: str, code: str | None = None) -> list[lsp.Diagnostic]:
    return [d for d in client.diagnostics.get(uri, []) if code is None or d.code == code]


def messages(client: LanguageClient, containing: str = "") -> list[str]:
    return [m.message for m in client.messages if containing in m.message]


def whole_file(lines: int = 1) -> lsp.Range:
    return lsp.Range(lsp.Position(0, 0), lsp.Position(lines, 0))


async def code_actions(client: LanguageClient, uri: str, range_: lsp.Range,
                       context: Sequence[lsp.Diagnostic] = ()) -> list[lsp.CodeAction]:
    result = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), range=range_,
        context=lsp.CodeActionContext(diagnostics=list(context))))
    assert result is not None
    assert all(isinstance(a, lsp.CodeAction) for a in result), result
    return list(result)  # type: ignore[arg-type]


async def run_action(client: LanguageClient, action: lsp.CodeAction) -> Any:
    """What an editor does when the user picks a code action: resolve it, then execute its command."""
    resolved = await client.code_action_resolve_async(action)
    assert resolved.command is not None, resolved
    return await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command=resolved.command.command, arguments=resolved.command.arguments))
