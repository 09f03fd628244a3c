"""The ``workspace/executeCommand`` surface: one command per action of :data:`palot.api.ACTIONS`.

Every command takes one JSON object whose keys are the api request's field names
(``[{"agent": "ag_1", "text": "..."}]``), or the same values positionally
(``["ag_1", "..."]``). The argument names, kinds and choices come from the api's
request models, so the editor offers exactly what the CLI and MCP offer
(:data:`ACTION_COMMANDS`, :data:`COMMAND_FIELDS`). Arguments are checked twice:
their shape here (an ``InvalidParams`` error saying what is expected; unknown
names are refused), then their values by :func:`palot.api.request_for` (the
api's own error, with its fix).

Some commands take a little more, for the editor:

| command | extra arguments | does |
|---|---|---|
| ``palot.spawn`` | uri?, range? | the prompt carries the file (and those lines); the project defaults to the workspace |
| ``palot.showDiff`` (api ``diff``) | target? (diff/file), show? | opens the agent's diff, or the file where the agent works (show false: only answers, with each file's counts) |
| ``palot.apply`` | path? | applies one file of the agent's changes, as the editor's own edit |
| ``palot.inbox`` | pick? (default true) | offers the oldest pending requests as buttons and answers the picked one |
| ``palot.settings`` | open? | opens settings.toml in the editor |
| ``palot.templates`` | pick? (default true) | offers the templates as buttons; the picked one spawns an agent in the workspace (or says which ``vars`` it needs) |
| ``palot.requestChanges`` | path?, line?, end_line?, comment? | one comment on those lines (without ``comment``: asks, offering a few) |
| ``palot.bulk`` | — | shows the plan; with ``dry_run`` true (the default) asks before doing it, false does it |
| ``palot.gc`` | — | lists orphans (with yes removes the safe ones) and says what holds work, with the command to keep it |
| ``palot.list`` | quiet? | answers without a message (an extension that shows agents itself) |
| ``palot.fileVersions`` (api ``diff``) | path | the base and the agent's version of one file, for an editor's own diff view |

Names an earlier palot-lsp used (``permissionMode``, ``baseBranch``, ``setupScript``, ``includeArchived``,
``permission``) are still accepted for the api names.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lsprotocol import types as lsp
from pydantic import BaseModel

from palot import api
from palot.errors import DirtyCheckout, InvalidInput, InvalidState

from . import actions as names
from .changes import agent_label
from .edits import HunkConflict, base_text, hunk_edits, workspace_edit

if TYPE_CHECKING:
    from .server import PalotLanguageServer

Report = Callable[[str], None]
Run = Callable[["PalotLanguageServer", dict[str, Any], Report], Awaitable[Any]]

DIFF_TARGETS = ("diff", "file")
#: Older argument names → the api's.
ALIASES = {"permissionMode": "permission_mode", "baseBranch": "base_branch", "setupScript": "setup_script",
           "includeArchived": "include_archived", "includeExternal": "include_external",
           "permission": "permission_id", "permissionId": "permission_id"}


class InvalidArguments(ValueError):
    """A command was called with arguments it cannot use."""


@dataclass(frozen=True)
class Arg:
    name: str
    type: str  # "string", "boolean", "number", "array", "object" or "range"
    required: bool = False
    choices: tuple[str, ...] = ()
    api: bool = True  # a field of the action's request (else the editor's own, e.g. uri, range)


@dataclass(frozen=True)
class Command:
    name: str
    action: str  # the api action it runs
    summary: str
    args: tuple[Arg, ...]
    run: Run
    progress: str | None = None  # a work-done progress title, for the long operations

    def signature(self) -> str:
        parts = []
        for arg in self.args:
            kind = "|".join(f'"{c}"' for c in arg.choices) if arg.choices else arg.type
            parts.append(f'"{arg.name}{"" if arg.required else "?"}": {kind}')
        return "{" + ", ".join(parts) + "}"


# --- arguments, derived from the api ---------------------------------------------------------


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]]:
    """The JSON kind (and choices) of a request field's type."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    if origin is Literal:
        return "string", tuple(str(a) for a in args)
    if origin in (list, tuple):
        return "array", ()
    if origin is dict:
        return "object", ()
    if annotation is bool:
        return "boolean", ()
    if annotation in (int, float):
        return "number", ()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object", ()
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "string", tuple(str(m.value) for m in annotation)
    return "string", ()


def api_args(action: str, *, optional: Sequence[str] = (), first: Sequence[str] = ()) -> tuple[Arg, ...]:
    """Every field of ``action``'s request as an argument (``optional``: defaulted by the editor)."""
    fields = api.ACTIONS[action].request.model_fields
    order = [*first, *(n for n in fields if n not in first)]
    out = []
    for name in order:
        kind, choices = _kind(fields[name].annotation)
        out.append(Arg(name, kind, fields[name].is_required() and name not in optional, choices))
    return tuple(out)


def _is_model(action: str, field: str) -> bool:
    """Whether the field is a request model of its own (container ``options``), not a plain mapping (``vars``)."""
    annotation = api.ACTIONS[action].request.model_fields[field].annotation
    return any(isinstance(a, type) and issubclass(a, BaseModel) for a in (annotation, *typing.get_args(annotation)))


def _object_model(action: str, field: str) -> type[BaseModel]:
    annotation = api.ACTIONS[action].request.model_fields[field].annotation
    return next(a for a in (annotation, *typing.get_args(annotation))
                if isinstance(a, type) and issubclass(a, BaseModel))


def parse_arguments(command: Command, raw: Sequence[Any] | None) -> dict[str, Any]:
    """Named, shape-checked arguments from ``[{...}]`` or positional ``[...]``; ``InvalidArguments`` otherwise."""
    values = list(raw or [])
    if len(values) == 1 and isinstance(values[0], dict):
        given = {ALIASES.get(k, k) if ALIASES.get(k, k) in _names(command) else k: v for k, v in values[0].items()}
    elif len(values) > len(command.args):
        raise InvalidArguments(f"{command.name} takes at most {len(command.args)} arguments, got {len(values)}; "
                               f"pass one object: {command.signature()}")
    else:
        given = {arg.name: value for arg, value in zip(command.args, values)}
    unknown = [k for k in given if k not in _names(command)]
    if unknown:
        raise InvalidArguments(f"{command.name}: unknown argument {', '.join(repr(k) for k in unknown)}; "
                               f"it takes: {', '.join(a.name for a in command.args)}")
    out: dict[str, Any] = {}
    for arg in command.args:
        value = given.get(arg.name)
        if value is None:
            if arg.required:
                raise InvalidArguments(f"{command.name} needs '{arg.name}'; pass one object: {command.signature()}")
            continue
        out[arg.name] = _check(command, arg, value)
    return out


def _names(command: Command) -> set[str]:
    return {a.name for a in command.args}


def _check(command: Command, arg: Arg, value: Any) -> Any:
    where = f"{command.name}: '{arg.name}'"
    if arg.type == "string":
        if not isinstance(value, str) or not value.strip():
            raise InvalidArguments(f"{where} must be a non-empty string, got {value!r}")
        if arg.choices and value not in arg.choices:
            raise InvalidArguments(f"{where} must be one of {', '.join(arg.choices)}, got {value!r}")
        return value
    if arg.type == "boolean":
        if not isinstance(value, bool):
            raise InvalidArguments(f"{where} must be true or false, got {value!r}")
        return value
    if arg.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArguments(f"{where} must be a number, got {value!r}")
        return value
    if arg.type == "array":
        return [value] if isinstance(value, str) else value  # one status for a list of them; the api checks the rest
    if arg.type == "object":
        # Only the shape is checked here; the api checks the keys and values and names the fix.
        if not isinstance(value, dict):
            raise InvalidArguments(f"{where} must be a JSON object, got {value!r}")
        return value
    if arg.type == "range":
        try:
            start, end = value["start"], value["end"]
            numbers = [start["line"], start["character"], end["line"], end["character"]]
        except (TypeError, KeyError):
            raise InvalidArguments(f"{where} must be an LSP range "
                                   '{"start": {"line", "character"}, "end": {"line", "character"}}') from None
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
            raise InvalidArguments(f"{where} needs non-negative integer lines and characters, got {value!r}")
        return lsp.Range(lsp.Position(numbers[0], numbers[1]), lsp.Position(numbers[2], numbers[3]))
    raise AssertionError(arg.type)


def request(command: Command, a: dict[str, Any], **override: Any) -> BaseModel:
    """The api request of the command's action from its (api) arguments; the api's error when a value is bad."""
    fields = {arg.name: a[arg.name] for arg in command.args if arg.api and arg.name in a}
    return api.request_for(command.action, {**fields, **override})


def dump(value: Any) -> Any:
    """An api answer as JSON for the editor."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [dump(v) for v in value]
    return value


# --- the commands -----------------------------------------------------------------------


async def spawn(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    client = await ls.palot_ready()
    prompt, project = a.get("prompt"), a.get("project")
    if "uri" in a and prompt is not None:
        prompt, file_project = await ls.prompt_with_file(prompt, a["uri"], a.get("range"))
        project = project or file_project
    elif "uri" in a:  # a template's prompt is the agent's: the file only says which project
        project = project or ls.folder_of(a["uri"])
    project = project or ls.default_project()
    agent: api.Agent = await client.call("spawn", request(COMMANDS[names.SPAWN], a, prompt=prompt, project=project),
                                         progress=report)
    ls.live.track(agent)
    ls.show(f"Agent {agent_label(agent)} is working on branch {agent.branch}.")
    return dump(agent)


async def list_agents(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    client = await ls.palot_ready()
    # The editor shows Palot's own agents unless asked for OpenCode sessions it did not start.
    agents: list[api.Agent] = await client.call("list", request(COMMANDS[names.LIST], {"include_external": False,
                                                                                       **a}))
    if "project" not in a:
        agents = [agent for agent in agents if ls.in_workspace(agent)]
    if a.get("quiet"):
        return dump(agents)
    lines = [f"{x.id}  {x.status.value:<12} {x.branch or '-'}  {x.title}" for x in agents[:20]]
    more = f"\n… and {len(agents) - 20} more" if len(agents) > 20 else ""
    ls.show("\n".join(lines) + more if agents else "No Palot agents in this workspace.")
    return dump(agents)


def _agent_call(command_name: str, message: Callable[[api.Agent], str | None] | None = None) -> Run:
    """A command whose answer is the agent's new view: the editor takes it in at once."""

    async def run(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
        command = COMMANDS[command_name]
        spec = api.ACTIONS[command.action]
        client = await ls.palot_ready()
        agent: api.Agent = await client.call(command.action, request(command, a),
                                             progress=report if spec.long else None)
        ls.live.track(agent)
        text = message(agent) if message else None
        if text:
            ls.show(text)
        return dump(agent)

    return run


def _plain_call(command_name: str, message: Callable[[Any], str | None] | None = None) -> Run:
    """A command that answers what the api answers, as JSON (and, for some, a word in the editor)."""

    async def run(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> Any:
        command = COMMANDS[command_name]
        spec = api.ACTIONS[command.action]
        client = await ls.palot_ready()
        result = await client.call(command.action, request(command, a), progress=report if spec.long else None)
        text = message(result) if message else None
        if text:
            ls.show(text)
        return dump(result)

    return run


async def show_diff(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    client = await ls.palot_ready()
    agent = await client.get(a["agent"])
    path = a.get("path")
    diff: api.AgentDiff = await client.call("diff", request(COMMANDS[names.SHOW_DIFF], a, agent=agent.id))
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
    diff: api.AgentDiff = await client.call("diff", request(COMMANDS[names.FILE_VERSIONS], a, agent=agent.id))
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
    request(COMMANDS[names.APPLY], a)  # the api's checks first
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


def _archived(agent: api.Agent) -> str:
    return f"Archived agent {agent_label(agent)}; its work is kept on branch {agent.branch}."


async def move(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    client = await ls.palot_ready()
    # Each of the service's numbered steps ("[3/9] exporting …") becomes a $/progress report.
    result: api.MigrationResult = await client.call("move", request(COMMANDS[names.MOVE], a), progress=report)
    agent = await client.get(result.agent_id)
    ls.live.track(agent)
    # A container's directory is its own /workspace, which means nothing on this machine: name the environment.
    where = f"a worktree at {result.directory}" if result.target == "worktree" \
        else f"a {result.target} ({result.environment_id})"
    restarted = f"; restarted: {'; '.join(result.processes_restarted)}" if result.processes_restarted else ""
    resumed = "; it was asked to carry on" if result.resumed else ""
    ls.show(f"Agent {agent_label(agent)} now runs in {where} on branch {result.branch} "
            f"(moved {result.messages} messages and {result.files_changed} changed files "
            f"in {result.seconds:.1f} s{restarted}{resumed}).")
    return result.model_dump(mode="json")


def _budgeted(agent: api.Agent) -> str:
    limits = [f"${agent.budget_usd:.2f} (spent ${agent.total_cost:.2f})" if agent.budget_usd is not None else "",
              f"{agent.budget_tokens:,} tokens (used {agent.tokens:,})" if agent.budget_tokens is not None else ""]
    text = f"Agent {agent_label(agent)}'s budget: {' and '.join(x for x in limits if x) or 'none'}."
    if agent.pause_reason:
        text += f" It is paused ({agent.pause_reason}): prompt it to go on."
    return text


async def inbox(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    """The pending requests; the editor offers the oldest as buttons (``window/showMessageRequest``) and answers
    the picked one, without holding up this command's answer."""
    client = await ls.palot_ready()
    items: list[api.InboxItem] = await client.call("inbox", request(COMMANDS[names.INBOX], a))
    if not items:
        ls.show("Nothing is waiting for you.")
    elif a.get("pick", True):
        ls.pick_inbox(items)
    else:
        ls.show(inbox_lines(items))
    return dump(items)


def inbox_lines(items: Sequence[api.InboxItem]) -> str:
    """The pending requests as lines of a message, oldest first."""
    return "\n".join(f"{i.permission_id}  {i.agent_id}  {i.tool}: {names.inbox_request(i)}  "
                     f"({api.elapsed(i.asked_at)})" for i in sorted(items, key=lambda i: i.asked_at))


def _replied(items: list[api.InboxItem]) -> str:
    if not items:
        return "No pending request matched: nothing was answered."
    return f"Answered {len(items)} permission request{'s' if len(items) != 1 else ''}: " + "; ".join(
        f"{i.agent_id} {i.tool} {names.inbox_request(i)}" for i in items)


async def settings(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    client = await ls.palot_ready()
    view: api.SettingsView = await client.call("settings", request(COMMANDS[names.SETTINGS], a))
    if view.error:
        ls.show(f"Palot's settings file has a mistake: {view.error}", lsp.MessageType.Warning)
    if a.get("open"):
        await ls.show_document(Path(view.path).as_uri(), None, what="Palot's settings")
    return dump(view)


async def templates(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    """The templates (of the workspace's project, when it has one); the editor offers them as buttons and spawns
    an agent from the picked one, without holding up this command's answer."""
    client = await ls.palot_ready()
    found: list[api.Template] = await client.call("templates", request(COMMANDS[names.TEMPLATES], a))
    if not found:
        ls.show("No prompt templates yet: add one with palot.addTemplate (or `palot templates add`).")
    elif a.get("pick", True):
        ls.pick_template(found)
    else:
        ls.show("\n".join(f"{t.name}  {t.project or 'every project'}  needs: {', '.join(t.variables) or 'nothing'}"
                          for t in found))
    return dump(found)


def _template_saved(saved: api.TemplateSaved) -> str:
    return saved.message + (f" (variables: {', '.join(saved.template.variables)})" if saved.template.variables
                            else "")


def _retried(agent: api.Agent) -> str:
    return f"Agent {agent_label(agent)} retries it on branch {agent.branch}; the old agent is left as it was."


async def request_changes(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any] | None:
    """Review comments to the agent; from a code action, one comment on ``path`` ``line``..``end_line``, its
    text from ``comment`` or, without it, asked of the person (in the background: the command answers None)."""
    client = await ls.palot_ready()
    command = COMMANDS[names.REQUEST_CHANGES]
    if "comments" not in a:
        if "path" not in a or "line" not in a:
            raise InvalidInput(f"{names.REQUEST_CHANGES} needs comments, or a path and line to comment on",
                               'pass {"agent", "comments": [{"path", "line", "comment"}]} or {"agent", "path", '
                               '"line", "comment"}')
        comment = {"path": a["path"], "line": a["line"], "end_line": a.get("end_line"), "comment": a.get("comment")}
        if not a.get("comment"):
            agent = await client.get(a["agent"])
            ls.ask(_ask_review(ls, agent, {**a, "agent": agent.id}, comment))
            return None
        a = {**a, "comments": [comment]}
    agent: api.Agent = await client.call("request_changes", request(command, a))
    ls.live.track(agent)
    count = len(a["comments"])
    ls.show(f"Sent {count} review comment{'s' if count != 1 else ''} to agent {agent_label(agent)}.")
    return dump(agent)


async def _ask_review(ls: PalotLanguageServer, agent: api.Agent, a: dict[str, Any], comment: dict[str, Any]) -> None:
    last = comment["end_line"] or comment["line"]
    question = names.review_question(agent, comment["path"], comment["line"], last)
    picked = await ls.question(question, list(names.REVIEW_CHOICES), type=lsp.MessageType.Info,
                               fallback=f"{question} Run {names.REQUEST_CHANGES} with a \"comment\" to say it.")
    if picked in names.REVIEW_CHOICES:
        await ls.press(names.ActionSpec(picked, lsp.CodeActionKind.Empty, names.REQUEST_CHANGES,
                                        {**{k: v for k, v in a.items() if v is not None}, "comment": picked}))


async def bulk(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    """The plan of a bulk action, shown; asked before it is carried out (``dry_run`` false: carried out)."""
    client = await ls.palot_ready()
    command = COMMANDS[names.BULK]
    plan: api.BulkResult = await client.call("bulk", request(command, a, dry_run=True))
    if a.get("dry_run") is False:
        todo = [i.agent_id for i in plan.items if i.outcome == "would"]
        done: api.BulkResult = await client.call("bulk", request(command, a, agents=todo, dry_run=False),
                                                 progress=report)
        ls.show(bulk_lines(done))
        return dump(done)
    asked = names.bulk_question(plan)
    if asked is None:
        ls.show(bulk_lines(plan) if plan.items else "No agent matches these filters: nothing to do.")
    else:
        ls.ask(_confirm_bulk(ls, a, plan, *asked))
    return dump(plan)


async def _confirm_bulk(ls: PalotLanguageServer, a: dict[str, Any], plan: api.BulkResult, question: str,
                        button: str) -> None:
    picked = await ls.question(question, [button, "Cancel"], fallback=f"{bulk_lines(plan)}\nRun {names.BULK} "
                               "with dry_run false to do it.")
    if picked != button:
        return
    todo = [i.agent_id for i in plan.items if i.outcome == "would"]
    await ls.press(names.ActionSpec(button, lsp.CodeActionKind.Empty, names.BULK,
                                    {**a, "agents": todo, "dry_run": False}))


def bulk_lines(result: api.BulkResult) -> str:
    """A bulk action's agents with their outcomes, one a line."""
    return "\n".join(f"{i.agent_id}  {i.status.value:<10} {i.title}: {i.message}" for i in result.items)


def _disk_use(use: api.DiskUse) -> str:
    top = sorted(use.by_agent.items(), key=lambda kv: -kv[1])[:5]
    return (f"Palot uses {api.human_bytes(use.total)}"
            + (": " + ", ".join(f"{agent} {api.human_bytes(size)}" for agent, size in top) if top else "")
            + "".join(f" (not measured: {why})" for why in use.unchecked))


def _gc(report: api.GcReport) -> str:
    if not report.orphans:
        return "Nothing is orphaned: everything Palot made has an agent."
    unsafe = [o for o in report.orphans if not o.safe and not o.removed]
    if report.removing:
        text = f"Removed {report.removed} of {len(report.orphans)} orphans ({api.human_bytes(report.freed)})."
    else:
        total = api.human_bytes(sum(o.size or 0 for o in report.orphans))
        text = f"{len(report.orphans)} orphans ({total}); run palot.gc with yes to remove the safe ones."
    if unsafe:
        text += " Holding work (kept): " + "; ".join(f"{o.kind} {o.name}: {o.keep}" for o in unsafe)
    return text


def _destroyed(done: api.Done) -> str:
    return done.message or "Removed the agent, its environment and its branch."


def _pr(pr: api.PullRequest) -> str:
    return pr.message + (f" {pr.url}" if pr.url and pr.url not in pr.message else "")


# --- the table --------------------------------------------------------------------------------

_EXTRA: dict[str, tuple[Arg, ...]] = {
    names.LIST: (Arg("quiet", "boolean", api=False),),
    names.SPAWN: (Arg("uri", "string", api=False), Arg("range", "range", api=False)),
    names.SHOW_DIFF: (Arg("target", "string", choices=DIFF_TARGETS, api=False), Arg("show", "boolean", api=False)),
    names.APPLY: (Arg("path", "string", api=False),),
    names.INBOX: (Arg("pick", "boolean", api=False),),
    names.SETTINGS: (Arg("open", "boolean", api=False),),
    names.TEMPLATES: (Arg("pick", "boolean", api=False),),
    names.REQUEST_CHANGES: (Arg("path", "string", api=False), Arg("line", "number", api=False),
                            Arg("end_line", "number", api=False), Arg("comment", "string", api=False)),
}
#: Commands for an editor's own views that read an action another command runs (it is not the action's command).
_EDITOR_ONLY = {names.FILE_VERSIONS}
#: (command id, action, run, progress title); the order of the editor's command list.
_TABLE: tuple[tuple[str, str, Run, str | None], ...] = (
    (names.STATUS, "status", _plain_call(names.STATUS), None),
    (names.PROJECTS, "projects", _plain_call(names.PROJECTS), None),
    (names.MODELS, "models", _plain_call(names.MODELS), None),
    (names.LIST, "list", list_agents, None),
    (names.GET, "get", _agent_call(names.GET), None),
    (names.SPAWN, "spawn", spawn, "Spawning a Palot agent"),
    (names.PROMPT, "prompt", _agent_call(names.PROMPT), None),
    (names.ABORT, "abort", _agent_call(names.ABORT), None),
    (names.REPLY_PERMISSION, "reply", _agent_call(names.REPLY_PERMISSION), None),
    (names.WAIT, "wait", _agent_call(names.WAIT), "Waiting for a Palot agent"),
    (names.ACTIVITY, "activity", _plain_call(names.ACTIVITY), None),
    (names.MESSAGES, "messages", _plain_call(names.MESSAGES), None),
    (names.SHOW_DIFF, "diff", show_diff, None),
    (names.FILE_VERSIONS, "diff", file_versions, None),
    (names.APPLY, "apply", apply, "Applying an agent's changes"),
    (names.CREATE_PR, "create_pr", _plain_call(names.CREATE_PR, _pr), "Creating a pull request"),
    (names.ARCHIVE, "archive", _agent_call(names.ARCHIVE, _archived), "Archiving a Palot agent"),
    (names.DESTROY, "destroy", _plain_call(names.DESTROY, _destroyed), None),
    (names.ENVIRONMENT, "environment", _plain_call(names.ENVIRONMENT), None),
    (names.MOVE, "move", move, "Moving a Palot agent"),
    (names.MOVES, "moves", _plain_call(names.MOVES), None),
    (names.AUDIT, "audit", _plain_call(names.AUDIT), None),
    (names.BUDGET, "budget", _agent_call(names.BUDGET, _budgeted), None),
    (names.INBOX, "inbox", inbox, None),
    (names.REPLY_INBOX, "inbox_reply", _plain_call(names.REPLY_INBOX, _replied), None),
    (names.SETTINGS, "settings", settings, None),
    (names.TEMPLATES, "templates", templates, None),
    (names.TEMPLATE_SHOW, "template_show", _plain_call(names.TEMPLATE_SHOW), None),
    (names.TEMPLATE_ADD, "template_add", _plain_call(names.TEMPLATE_ADD, _template_saved), None),
    (names.TEMPLATE_REMOVE, "template_remove", _plain_call(names.TEMPLATE_REMOVE, lambda done: done.message), None),
    (names.RETRY, "retry", _agent_call(names.RETRY, _retried), "Retrying a Palot agent"),
    (names.REQUEST_CHANGES, "request_changes", request_changes, None),
    (names.BULK, "bulk", bulk, "A Palot bulk action"),
    (names.DISK_USE, "du", _plain_call(names.DISK_USE, _disk_use), None),
    (names.GC, "gc", _plain_call(names.GC, _gc), "Looking for what no agent owns"),
)


def _command(name: str, action: str, run: Run, progress: str | None) -> Command:
    if action == "spawn":  # the prompt first; the project defaults to the file's or the workspace's
        args = api_args(action, optional=("project",), first=("prompt",))
        args = (args[0], *_EXTRA[name], *args[1:])
    elif action == "request_changes":  # a code action gives one comment's path and lines instead
        args = (*api_args(action, optional=("comments",)), *_EXTRA[name])
    else:
        args = (*api_args(action), *_EXTRA.get(name, ()))
    return Command(name, action, api.ACTIONS[action].summary, args, run, progress)


COMMANDS: dict[str, Command] = {name: _command(name, action, run, progress)
                                for name, action, run, progress in _TABLE}
#: Every api action → the command that runs it (a parity test checks none is missing).
ACTION_COMMANDS: dict[str, str] = {c.action: c.name for c in COMMANDS.values() if c.name not in _EDITOR_ONLY}
#: Every command → the argument names it accepts (the api request's fields, then the editor's own).
COMMAND_FIELDS: dict[str, tuple[str, ...]] = {c.name: tuple(a.name for a in c.args) for c in COMMANDS.values()}
#: Every command → its arguments that are JSON objects → the fields they take (e.g. a spawn's container
#: ``options``: memory, cpus, pids, network, ports), from the api's request models.
OBJECT_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    c.name: {name: tuple(_object_model(c.action, name).model_fields) for name in
             (a.name for a in c.args if a.type == "object" and a.api and _is_model(c.action, a.name))}
    for c in COMMANDS.values()}
