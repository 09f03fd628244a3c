"""The ``workspace/executeCommand`` surface: one command per action of :data:`palot.api.ACTIONS`.

Every command takes one JSON object whose keys are the api request's field names
(``[{"agent": "ag_1", "text": "..."}]``), or the same values positionally
(``["ag_1", "..."]``). The argument names, kinds and choices come from the api's
request models, so the editor offers exactly what the CLI and MCP offer
(:data:`ACTION_COMMANDS`, :data:`COMMAND_FIELDS`). Arguments are checked twice:
their shape here (an ``InvalidParams`` error saying what is expected; unknown
names are refused), then their values by :func:`palot.api.request_for` (the
api's own error, with its fix).

This module owns the table (:data:`COMMANDS`) and the commands that are one api
call; the arguments' shapes and checks are in ``arguments.py``, the commands on
an agent's changes in the editor's files in ``commands_changes.py``, and those
that ask the person before acting in ``commands_asking.py``.

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

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from palot import api

from . import actions as names
from .arguments import (
    ALIASES,
    Arg,
    Command,
    InvalidArguments,
    Report,
    Run,
    api_args,
    dump,
    is_model,
    object_model,
    parse_arguments,
    request,
)
from .changes import agent_label
from .commands_asking import bulk, bulk_lines, inbox, inbox_lines, request_changes, templates
from .commands_changes import apply, file_versions, show_diff

if TYPE_CHECKING:
    from .server import PalotLanguageServer

#: The names other modules import from here (the arguments and the commands moved beside it).
__all__ = ["ACTION_COMMANDS", "ALIASES", "COMMANDS", "COMMAND_FIELDS", "DIFF_TARGETS", "OBJECT_FIELDS", "Arg",
           "Command", "InvalidArguments", "Report", "Run", "api_args", "apply", "bulk", "bulk_lines", "dump",
           "file_versions", "inbox", "inbox_lines", "list_agents", "move", "parse_arguments", "request",
           "request_changes", "settings", "show_diff", "spawn", "templates"]

DIFF_TARGETS = ("diff", "file")


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


def _archived(agent: api.Agent) -> str:
    return f"Archived agent {agent_label(agent)}; its work is kept on branch {agent.branch}."


def _paused(agent: api.Agent) -> str:
    return f"Paused agent {agent_label(agent)}: its work is saved and its cloud environment stopped."


def _resumed(agent: api.Agent) -> str:
    return f"Resumed agent {agent_label(agent)}: its code and conversation are back."


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


def _template_saved(saved: api.TemplateSaved) -> str:
    return saved.message + (f" (variables: {', '.join(saved.template.variables)})" if saved.template.variables
                            else "")


def _retried(agent: api.Agent) -> str:
    return f"Agent {agent_label(agent)} retries it on branch {agent.branch}; the old agent is left as it was."


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
    (names.PAUSE, "pause", _agent_call(names.PAUSE, _paused), "Pausing a Palot cloud agent"),
    (names.RESUME, "resume", _agent_call(names.RESUME, _resumed), "Resuming a Palot cloud agent"),
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
    c.name: {name: tuple(object_model(c.action, name).model_fields) for name in
             (a.name for a in c.args if a.type == "object" and a.api and is_model(c.action, a.name))}
    for c in COMMANDS.values()}
