"""The ``workspace/executeCommand`` surface: one row per command, each a thin call into ``palot.agents``.

Arguments are one JSON object (``[{"agent": "ag_1", "text": "..."}]``) or the
same values positionally (``["ag_1", "..."]``). They are checked here, loosely
(unknown keys are ignored), so a bad call gets an ``InvalidParams`` error that
says what is expected instead of a decoding failure.

| command | arguments | does |
|---|---|---|
| ``palot.spawn`` | prompt, uri?, range?, title?, permissionMode?, model?, project?, baseBranch?, setupScript? | spawn an agent; with ``uri`` and ``range`` the prompt carries those lines |
| ``palot.list`` | project?, status?, includeArchived? | the workspace's agents |
| ``palot.prompt`` | agent, text | send an agent another prompt |
| ``palot.abort`` | agent | stop the agent's current turn |
| ``palot.replyPermission`` | agent, reply (once/always/reject), permission? | answer a permission request |
| ``palot.showDiff`` | agent, path?, target? (diff/file) | open the agent's diff, or the file in its worktree |
| ``palot.apply`` | agent, path? | apply the agent's changes (or one file of them) to the checkout |
| ``palot.archive`` | agent | stop the agent, keep its branch |
| ``palot.move`` | agent, target (worktree/container), options?, resume? | move the agent, with its code and conversation |
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from palot import Agent
from palot.agents import AgentStatus
from palot.errors import InvalidInput, InvalidState
from palot.hunks import parse_hunks
from palot.migration import MigrationResult

from . import actions as names
from .adapters import apply_file
from .changes import agent_label

if TYPE_CHECKING:
    from .server import PalotLanguageServer

Report = Callable[[str], None]
Run = Callable[["PalotLanguageServer", dict[str, Any], Report], Awaitable[Any]]

PERMISSION_MODES = ("default", "ask", "auto")
REPLIES = ("once", "always", "reject")
DIFF_TARGETS = ("diff", "file")
MOVE_TARGETS = ("worktree", "container", "cloud")  # the environments an agent can move between (as `palot agents move`)


class InvalidArguments(ValueError):
    """A command was called with arguments it cannot use."""


@dataclass(frozen=True)
class Arg:
    name: str
    type: str  # "string", "range", "boolean" or "object"
    required: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    name: str
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


# --- argument checking --------------------------------------------------------------


def parse_arguments(command: Command, raw: Sequence[Any] | None) -> dict[str, Any]:
    """Named, checked arguments from ``[{...}]`` or positional ``[...]``; ``InvalidArguments`` otherwise."""
    values = list(raw or [])
    if len(values) == 1 and isinstance(values[0], dict):
        given = dict(values[0])
    elif len(values) > len(command.args):
        raise InvalidArguments(f"{command.name} takes at most {len(command.args)} arguments, got {len(values)}; "
                               f"pass one object: {command.signature()}")
    else:
        given = {arg.name: value for arg, value in zip(command.args, values)}
    out: dict[str, Any] = {}
    for arg in command.args:
        value = given.get(arg.name)
        if value is None:
            if arg.required:
                raise InvalidArguments(f"{command.name} needs '{arg.name}'; pass one object: {command.signature()}")
            continue
        out[arg.name] = _check(command, arg, value)
    return out


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
    if arg.type == "object":
        # Only the shape is checked here; the core checks the keys and values and names the fix.
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


def dump(agent: Agent) -> dict[str, Any]:
    return agent.model_dump(mode="json")


# --- the commands -----------------------------------------------------------------------


async def spawn(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    palot = await ls.palot_ready()
    prompt, project = a["prompt"], a.get("project")
    if "uri" in a:
        prompt, file_project = await ls.prompt_with_file(prompt, a["uri"], a.get("range"))
        project = project or file_project
    project = project or ls.default_project()
    agent = await palot.agents.spawn(project, prompt, title=a.get("title"), model=a.get("model"),
                                     permission_mode=a.get("permissionMode", "default"),
                                     base_branch=a.get("baseBranch"), setup_script=a.get("setupScript"),
                                     progress=report)
    ls.live.track(agent)
    ls.show(f"Agent {agent_label(agent)} is working on branch {agent.branch}.")
    return dump(agent)


async def list_agents(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    palot = await ls.palot_ready()
    agents = palot.agents.list(project=a.get("project"), status=a.get("status"),
                               include_archived=a.get("includeArchived", False), include_external=False)
    if "project" not in a:
        agents = [agent for agent in agents if ls.in_workspace(agent)]
    lines = [f"{x.id}  {x.status.value:<12} {x.branch or '-'}  {x.title}" for x in agents[:20]]
    more = f"\n… and {len(agents) - 20} more" if len(agents) > 20 else ""
    ls.show("\n".join(lines) + more if agents else "No Palot agents in this workspace.")
    return [dump(agent) for agent in agents]


async def prompt(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    agent = await (await ls.palot_ready()).agents.prompt(a["agent"], a["text"], model=a.get("model"))
    ls.live.track(agent)
    return dump(agent)


async def abort(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    agent = await (await ls.palot_ready()).agents.abort(a["agent"])
    ls.live.track(agent)
    return dump(agent)


async def reply_permission(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    agent = await (await ls.palot_ready()).agents.reply_permission(
        a["agent"], a["reply"], permission_id=a.get("permission"))
    ls.live.track(agent)
    return dump(agent)


async def show_diff(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    palot = await ls.palot_ready()
    agent = await palot.agents.get(a["agent"])
    path = a.get("path")
    diff = await palot.agents.diff(agent.id, path=path)
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
        out = palot.paths.home / "lsp" / "diffs"
        out.mkdir(parents=True, exist_ok=True)
        name = agent.id + ("-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", path) if path else "")
        diff_file = out / f"{name}.diff"
        diff_file.write_text(diff.patch)
        uri, selection = diff_file.as_uri(), None
    shown = await ls.show_document(uri, selection, what=f"{agent_label(agent)}'s change")
    return {"agent": agent.id, "uri": uri, "shown": shown, "files": [f.path for f in diff.files],
            "additions": diff.additions, "deletions": diff.deletions}


def _first_change(patch: str, path: str) -> lsp.Range | None:
    found = parse_hunks(patch).get(path)
    ranges = [r for h in (found.hunks if found else []) for r in h.changed_ranges()]
    if not ranges:
        return None
    start, end = ranges[0]
    return lsp.Range(lsp.Position(start - 1, 0), lsp.Position(end, 0))


async def apply(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    palot = await ls.palot_ready()
    agent_id = palot.agents.resolve(a["agent"])
    if "path" in a:
        report(f"applying {a['path']}")
        changed = await apply_file(palot, agent_id, a["path"])
    else:
        report("applying every changed file")
        changed = await palot.agents.apply(agent_id)
    ls.show(f"Applied agent {agent_id}'s changes to your checkout: {', '.join(changed)}")
    return {"agent": agent_id, "files": changed}


async def archive(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    agent = await (await ls.palot_ready()).agents.archive(a["agent"])
    ls.live.track(agent)
    ls.show(f"Archived agent {agent_label(agent)}; its work is kept on branch {agent.branch}.")
    return dump(agent)


async def move(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any]:
    palot = await ls.palot_ready()
    # Each of the core's numbered steps ("[3/9] exporting …") becomes a $/progress report.
    result: MigrationResult = await palot.agents.move(a["agent"], a["target"], options=a.get("options"),
                                                      resume=a.get("resume"), progress=report)
    agent = await palot.agents.get(result.agent_id)
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


_AGENT = Arg("agent", "string", required=True)

COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command(names.SPAWN, "Spawn an agent", (
        Arg("prompt", "string", required=True), Arg("uri", "string"), Arg("range", "range"), Arg("title", "string"),
        Arg("permissionMode", "string", choices=PERMISSION_MODES), Arg("model", "string"), Arg("project", "string"),
        Arg("baseBranch", "string"), Arg("setupScript", "string"),
    ), spawn, progress="Spawning a Palot agent"),
    Command(names.LIST, "List agents", (
        Arg("project", "string"), Arg("status", "string", choices=tuple(s.value for s in AgentStatus)),
        Arg("includeArchived", "boolean"),
    ), list_agents),
    Command(names.PROMPT, "Send an agent a prompt", (_AGENT, Arg("text", "string", required=True),
                                                      Arg("model", "string")), prompt),
    Command(names.ABORT, "Abort an agent's turn", (_AGENT,), abort),
    Command(names.REPLY_PERMISSION, "Reply to a permission request", (
        _AGENT, Arg("reply", "string", required=True, choices=REPLIES), Arg("permission", "string"),
    ), reply_permission),
    Command(names.SHOW_DIFF, "Show an agent's diff", (
        _AGENT, Arg("path", "string"), Arg("target", "string", choices=DIFF_TARGETS),
    ), show_diff),
    Command(names.APPLY, "Apply an agent's changes", (_AGENT, Arg("path", "string")), apply,
            progress="Applying an agent's changes"),
    Command(names.ARCHIVE, "Archive an agent", (_AGENT,), archive, progress="Archiving a Palot agent"),
    Command(names.MOVE, "Move an agent to another environment", (
        _AGENT, Arg("target", "string", required=True, choices=MOVE_TARGETS), Arg("options", "object"),
        Arg("resume", "boolean"),
    ), move, progress="Moving a Palot agent"),
)}
