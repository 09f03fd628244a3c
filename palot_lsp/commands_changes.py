"""The commands that act on an agent's changes in the editor's files: ``palot.showDiff`` (its diff, or the file
where it works), ``palot.fileVersions`` (one file's base and the agent's text) and ``palot.apply`` (all of them
through the api, or one file as the editor's own edit)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from palot import api
from palot.errors import DirtyCheckout, InvalidInput, InvalidState

from . import actions as names
from .arguments import Report, command_named, request
from .changes import agent_label
from .edits import HunkConflict, base_text, hunk_edits, workspace_edit

if TYPE_CHECKING:
    from .server import PalotLanguageServer


async def show_diff(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    client = await ls.palot_ready()
    agent = await client.get(a["agent"])
    path = a.get("path")
    diff: api.AgentDiff = await client.call("diff", request(command_named(names.SHOW_DIFF), a, agent=agent.id))
    if a.get("show") is False:  # an editor that lists the files itself (the VS Code extension's Agents view)
        return {"agent": agent.id, "uri": None, "shown": False, "files": [f.model_dump() for f in diff.files],
                "additions": diff.additions, "deletions": diff.deletions, "patch": diff.patch,
                "unavailable": diff.unavailable}
    if not diff.patch.strip():
        what = f"{path}" if path else "any file"
        raise InvalidState(f"agent {agent.id} has not changed {what} yet", "wait for it to edit, or prompt it")
    if a.get("target") == "file":
        # The file where the agent's files are on this machine (a container's /workspace means nothing here).
        host = agent.environment.host_path
        if host is None:
            raise InvalidState(f"agent {agent.id}'s files are no longer on this machine "
                               f"({agent.environment.unavailable or 'its environment is gone'})",
                               "show its diff instead (target \"diff\")")
        worktree_file = Path(host) / (path or "")
        if path is None or not worktree_file.is_file():
            raise InvalidInput(f"{path or 'no path given'}: no such file in agent {agent.id}'s worktree",
                               "pass the 'path' of a file the agent changed, or show its diff (target \"diff\")")
        uri, selection = worktree_file.as_uri(), _first_change(diff.patch, path)
    else:
        out = client.paths.home / "lsp" / "diffs"
        out.mkdir(parents=True, exist_ok=True)
        name = agent.id + ("-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", path) if path else "")
        diff_file = out / f"{name}.diff"
        diff_file.write_text(diff.patch)
        uri, selection = diff_file.as_uri(), None
    shown = await ls.show_document(uri, selection, what=f"{agent_label(agent)}'s change")
    return {"agent": agent.id, "uri": uri, "shown": shown, "files": [f.path for f in diff.files],
            "additions": diff.additions, "deletions": diff.deletions, "patch": diff.patch,
            "unavailable": diff.unavailable}


async def file_versions(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    """One file as it was at the agent's base commit and as the agent has it now, for a diff editor: the agent's
    version is the file where the agent works, the base that file with the agent's hunks undone."""
    client = await ls.palot_ready()
    path = a.get("path")
    if path is None:
        raise InvalidInput(f"{names.FILE_VERSIONS} needs the 'path' of a file the agent changed",
                           'pass {"agent", "path"}; palot.showDiff lists the files')
    agent = await client.get(a["agent"])
    diff: api.AgentDiff = await client.call("diff", request(command_named(names.FILE_VERSIONS), a, agent=agent.id))
    change = next((f for f in diff.files if f.path == path), None)
    if change is None:
        raise InvalidState(f"agent {agent.id} has no changes to {path}", "wait for it to edit the file, or prompt it")
    found = api.parse_hunks(diff.patch).get(path)
    if change.binary or change.status == "deleted" or found is None:
        raise InvalidState(f"agent {agent.id}'s change to {path} is not a text edit (binary or deleted)",
                           "show its diff instead (palot.showDiff)")
    host = agent.environment.host_path
    if host is None:
        raise InvalidState(f"agent {agent.id}'s files are no longer on this machine "
                           f"({agent.environment.unavailable or 'its environment is gone'})",
                           "show its diff instead (palot.showDiff)")
    try:
        text = (Path(host) / path).read_text(encoding="utf-8", errors="surrogateescape")
        base = base_text(text, found.hunks, path)
    except (OSError, HunkConflict) as e:
        raise InvalidState(f"could not read agent {agent.id}'s version of {path} ({e})",
                           "try again: the agent may still be editing it") from None
    return {"agent": agent.id, "path": path, "status": change.status, "base_commit": diff.base_commit,
            "base": base, "text": text}


def _first_change(patch: str, path: str) -> lsp.Range | None:
    found = api.parse_hunks(patch).get(path)
    ranges = [r for h in (found.hunks if found else []) for r in h.changed_ranges()]
    if not ranges:
        return None
    start, end = ranges[0]
    return lsp.Range(lsp.Position(start - 1, 0), lsp.Position(end, 0))


async def apply(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    client = await ls.palot_ready()
    request(command_named(names.APPLY), a)  # the api's checks first
    agent = await client.get(a["agent"])
    if "path" in a:
        report(f"applying {a['path']}")
        return await _apply_file(ls, agent, a["path"])
    report("applying every changed file")
    changed = await client.apply(agent.id)
    ls.show(f"Applied agent {agent.id}'s changes to your checkout: {', '.join(changed)}")
    return {"agent": agent.id, "files": changed}


async def _apply_file(ls: PalotLanguageServer, agent: api.Agent, path: str) -> dict[str, Any]:
    """One file of the agent's changes. Once the agent is done, that is the api's ``apply`` of that file
    (checked and audited by the service; the editor reloads the file). While it works, when the open
    document has unsaved changes, or when git refuses because the checkout has other uncommitted changes,
    the editor edits the document itself, hunk by hunk (undoable, kept when the user saves)."""
    client = await ls.palot_ready()
    if agent.read_only:
        raise InvalidInput(f"agent {agent.id} is an OpenCode session Palot did not start, so it cannot apply it",
                           "spawn a Palot agent for this work")
    whole = await client.diff(agent.id)
    if path not in {f.path for f in whole.files}:
        raise InvalidState(f"agent {agent.id} has no changes to {path}", "wait for it to edit the file, or prompt it")
    if not agent.status.active and not ls.has_unsaved_changes(agent.project_path, path):
        try:
            changed = await client.apply(agent.id, path=path)
        except DirtyCheckout:
            pass  # the editor's own edit below works on a dirty checkout, and refuses on a conflict
        else:
            ls.show(f"Applied agent {agent.id}'s changes to your checkout: {', '.join(changed)}")
            return {"agent": agent.id, "files": changed}
    found = api.parse_hunks((await client.diff(agent.id, path=path)).patch).get(path)
    if found is None or not found.hunks:
        raise InvalidState(f"agent {agent.id}'s change to {path} is not text (binary, or a rename)",
                           "apply all of its changes instead (palot.apply without 'path')")
    uri, lines, version = ls.project_document(agent.project_path, path)
    try:
        edits = hunk_edits(lines, found.hunks, path)
    except HunkConflict as e:
        raise InvalidState(f"{e}: nothing was changed", "undo your edits to those lines, or apply the agent's "
                           "changes on its branch") from None
    await ls.apply_edit(f"Apply {agent_label(agent)}'s change to {path}", workspace_edit(uri, version, edits))
    ls.show(f"Applied agent {agent.id}'s change to {path} in the editor (save the file to keep it).")
    return {"agent": agent.id, "files": [path], "edited": uri}
