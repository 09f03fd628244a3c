"""The editor's workspace as the language server sees it: its folders (each the Palot project holding it), the
documents as the editor has them (open, else on disk), a prompt with a file as context, and edits the editor
applies to them.

``Workspace`` is mixed into ``PalotLanguageServer``; it uses pygls' ``workspace`` and the server's ``live``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.uris import to_fs_path

from palot.api import Agent
from palot.errors import InvalidInput, InvalidState

from . import prompts
from .actions import request_lines

#: How long to wait for the editor to answer a request of ours (open a document, create a progress token).
CLIENT_TIMEOUT = 15.0


class Workspace:
    """The workspace's folders and documents, for the commands and handlers."""

    def folder_of(self, uri: str) -> str | None:
        """The folder of a file (a spawn's project, when no other is given)."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        return os.path.dirname(path) if path else None

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

