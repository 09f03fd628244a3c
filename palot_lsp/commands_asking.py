"""The commands that offer the person a choice before they act, without holding up their answer: ``palot.inbox``
(answer a pending request), ``palot.templates`` (spawn from one), ``palot.requestChanges`` (a review comment)
and ``palot.bulk`` (confirm the plan)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from palot import api
from palot.errors import InvalidInput

from . import actions as names
from .arguments import Report, command_named, dump, request
from .changes import agent_label

if TYPE_CHECKING:
    from .server import PalotLanguageServer


async def inbox(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    """The pending requests; the editor offers the oldest as buttons (``window/showMessageRequest``) and answers
    the picked one, without holding up this command's answer."""
    client = await ls.palot_ready()
    items: list[api.InboxItem] = await client.call("inbox", request(command_named(names.INBOX), a))
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


async def templates(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    """The templates (of the workspace's project, when it has one); the editor offers them as buttons and spawns
    an agent from the picked one, without holding up this command's answer."""
    client = await ls.palot_ready()
    found: list[api.Template] = await client.call("templates", request(command_named(names.TEMPLATES), a))
    if not found:
        ls.show("No prompt templates yet: add one with palot.addTemplate (or `palot templates add`).")
    elif a.get("pick", True):
        ls.pick_template(found)
    else:
        ls.show("\n".join(f"{t.name}  {t.project or 'every project'}  needs: {', '.join(t.variables) or 'nothing'}"
                          for t in found))
    return dump(found)


async def request_changes(ls: PalotLanguageServer, a: dict[str, Any], report: Report) -> dict[str, Any] | None:
    """Review comments to the agent; from a code action, one comment on ``path`` ``line``..``end_line``, its
    text from ``comment`` or, without it, asked of the person (in the background: the command answers None)."""
    client = await ls.palot_ready()
    command = command_named(names.REQUEST_CHANGES)
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
    command = command_named(names.BULK)
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
