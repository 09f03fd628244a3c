"""Which code actions to offer for a range of a file (pure).

| when | action | command |
|---|---|---|
| a selection | Ask an agent about this · Fix with an agent | ``palot.spawn`` with the file and range |
| another server's diagnostic in the context | Fix this diagnostic with an agent | ``palot.spawn`` with the diagnostic |
| lines an agent changed | Show the agent's change · Apply the agent's change to this file · Request a change from the agent here | ``palot.showDiff`` · ``palot.apply`` · ``palot.requestChanges`` |
| a pending permission request | Allow once · Allow always · Reject | ``palot.replyPermission`` |

And what the buttons of a "needs you" notification (``window/showMessageRequest``), of ``palot.inbox``'s
pick and of ``palot.templates``' pick are: :func:`notification_button`, :func:`inbox_choices`,
:data:`REPLY_CHOICES`, :func:`template_choices`, :func:`template_spawn`; the comments a request for changes
offers (:data:`REVIEW_CHOICES`) and a bulk action's question (:func:`bulk_question`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types as lsp

from palot import api

from . import prompts
from .changes import AgentChange, PendingPermission, agent_label
from .diagnostics import SOURCE

SPAWN = "palot.spawn"
LIST = "palot.list"
PROMPT = "palot.prompt"
ABORT = "palot.abort"
REPLY_PERMISSION = "palot.replyPermission"
SHOW_DIFF = "palot.showDiff"
APPLY = "palot.apply"
ARCHIVE = "palot.archive"
PAUSE = "palot.pause"
RESUME = "palot.resume"
MOVE = "palot.move"
STATUS = "palot.status"
PROJECTS = "palot.projects"
MODELS = "palot.models"
GET = "palot.get"
WAIT = "palot.wait"
ACTIVITY = "palot.activity"
MESSAGES = "palot.messages"
CREATE_PR = "palot.createPr"
DESTROY = "palot.destroy"
ENVIRONMENT = "palot.environment"
MOVES = "palot.moves"
AUDIT = "palot.audit"
BUDGET = "palot.setBudget"
INBOX = "palot.inbox"
REPLY_INBOX = "palot.replyInbox"
SETTINGS = "palot.settings"
TEMPLATES = "palot.templates"
TEMPLATE_SHOW = "palot.showTemplate"
TEMPLATE_ADD = "palot.addTemplate"
TEMPLATE_REMOVE = "palot.removeTemplate"
RETRY = "palot.retry"
REQUEST_CHANGES = "palot.requestChanges"
BULK = "palot.bulk"
DISK_USE = "palot.diskUse"
GC = "palot.gc"
FILE_VERSIONS = "palot.fileVersions"

ASK_TITLE = "Ask an agent about this"
FIX_TITLE = "Fix with an agent"
FIX_DIAGNOSTIC_TITLE = "Fix this diagnostic with an agent"
SHOW_CHANGE_TITLE = "Show the agent's change"
APPLY_CHANGE_TITLE = "Apply the agent's change to this file"
REQUEST_CHANGE_TITLE = "Request a change from"


@dataclass(frozen=True)
class ActionSpec:
    """A code action before it becomes an LSP ``CodeAction``: a title and the command it runs."""

    title: str
    kind: str
    command: str
    arguments: dict[str, Any]
    diagnostics: tuple[lsp.Diagnostic, ...] = field(default=())
    preferred: bool = False


def request_lines(range_: lsp.Range) -> tuple[int, int]:
    """The 1-based lines a request range covers (a selection ending at column 0 stops the line before)."""
    first, last = range_.start.line + 1, range_.end.line + 1
    if range_.end.character == 0 and range_.end.line > range_.start.line:
        last -= 1
    return first, max(first, last)


def is_selection(range_: lsp.Range) -> bool:
    return range_.start != range_.end


def _short(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def code_actions(
    uri: str,
    range_: lsp.Range,
    context_diagnostics: Sequence[lsp.Diagnostic],
    changes: Sequence[AgentChange],
    permissions: Sequence[PendingPermission],
    only: Sequence[str] | None = None,
) -> list[ActionSpec]:
    """The actions for ``range_`` of the file at ``uri``, most specific first."""
    first, last = request_lines(range_)
    where = {"uri": uri, "range": _range_json(range_)}
    actions: list[ActionSpec] = []

    for pending in permissions:
        if pending.start <= last and first <= pending.end:
            args = {"agent": pending.agent.id, "permission_id": pending.permission.id}
            label = f"{pending.permission.permission} {pending.path}"
            diags = tuple(d for d in context_diagnostics if _is_permission_diagnostic(d, pending))
            actions += [
                ActionSpec(f"Allow {agent_label(pending.agent)} to {label} (once)", lsp.CodeActionKind.QuickFix,
                           REPLY_PERMISSION, {**args, "reply": "once"}, diags, preferred=True),
                ActionSpec(f"Allow {agent_label(pending.agent)} to {label} (always)", lsp.CodeActionKind.QuickFix,
                           REPLY_PERMISSION, {**args, "reply": "always"}, diags),
                ActionSpec(f"Reject {agent_label(pending.agent)}'s request to {label}", lsp.CodeActionKind.QuickFix,
                           REPLY_PERMISSION, {**args, "reply": "reject"}, diags),
            ]

    for change in changes:
        if change.touches(first, last):
            args = {"agent": change.agent.id, "path": change.path}
            actions += [
                ActionSpec(f"{SHOW_CHANGE_TITLE}: {agent_label(change.agent)}", lsp.CodeActionKind.Empty,
                           SHOW_DIFF, args),
                ActionSpec(f"{APPLY_CHANGE_TITLE}: {agent_label(change.agent)}", lsp.CodeActionKind.Empty,
                           APPLY, args),
                ActionSpec(f"{REQUEST_CHANGE_TITLE} {agent_label(change.agent)} here", lsp.CodeActionKind.Empty,
                           REQUEST_CHANGES, {**args, "line": first, "end_line": last}),
            ]

    for diagnostic in context_diagnostics:
        if diagnostic.source == SOURCE:
            continue
        prompt = prompts.fix_diagnostic(diagnostic.message, diagnostic.source)
        actions.append(ActionSpec(
            f"{FIX_DIAGNOSTIC_TITLE}: {_short(diagnostic.message)}", lsp.CodeActionKind.QuickFix, SPAWN,
            {"prompt": prompt, "uri": uri, "range": _range_json(diagnostic.range)}, (diagnostic,),
        ))

    if is_selection(range_):
        actions += [
            ActionSpec(ASK_TITLE, lsp.CodeActionKind.Empty, SPAWN, {"prompt": prompts.ASK, **where}),
            ActionSpec(FIX_TITLE, lsp.CodeActionKind.QuickFix, SPAWN, {"prompt": prompts.FIX, **where}),
        ]

    if only:
        actions = [a for a in actions if any(a.kind == k or a.kind.startswith(k + ".") for k in only)]
    return actions


def _is_permission_diagnostic(diagnostic: lsp.Diagnostic, pending: PendingPermission) -> bool:
    data = diagnostic.data if isinstance(diagnostic.data, dict) else {}
    return diagnostic.source == SOURCE and data.get("permission") == pending.permission.id


def _range_json(range_: lsp.Range) -> dict[str, Any]:
    return {"start": {"line": range_.start.line, "character": range_.start.character},
            "end": {"line": range_.end.line, "character": range_.end.character}}


@dataclass(frozen=True)
class LensSpec:
    """A code lens before it becomes an LSP ``CodeLens``: the line (1-based) and the command it runs."""

    line: int
    title: str
    command: str
    arguments: dict[str, Any]


def code_lenses(changes: Sequence[AgentChange]) -> list[LensSpec]:
    """Above each agent's first changed line in the file: who changed it (and its status), show it, apply it."""
    out: list[LensSpec] = []
    for change in changes:
        ranges = change.ranges()
        if not ranges:
            continue
        line = ranges[0][0]
        args = {"agent": change.agent.id, "path": change.path}
        count = len(ranges)
        what = f"{count} change{'s' if count > 1 else ''}"
        out += [
            LensSpec(line, f"Palot: {agent_label(change.agent)} ({change.agent.status.value}), {what}", SHOW_DIFF,
                     args),
            LensSpec(line, "Apply to this file", APPLY, args),
        ]
    return out


# --- notifications and the inbox --------------------------------------------------------------

#: How many pending requests ``palot.inbox`` offers as buttons (the oldest; editors show few buttons well).
INBOX_CHOICES = 8
#: The buttons that answer one picked request, and the reply each gives.
REPLY_CHOICES = {"Allow once": "once", "Allow always": "always", "Reject": "reject"}


def notification_button(note: api.Notification) -> ActionSpec | None:
    """The editor's button for what a notification says to do next (``note.action``, a ``palot`` command line
    or a settings fix), as the command it runs; None when there is none."""
    action = note.action or ""
    words = action.split()
    if "settings.toml" in action or words[:1] == ["edit"]:
        return ActionSpec("Open settings", lsp.CodeActionKind.Empty, SETTINGS, {"open": True})
    if words[:1] != ["palot"]:
        return None
    if words[1:2] == ["inbox"]:
        return ActionSpec("Open inbox", lsp.CodeActionKind.Empty, INBOX, {})
    if words[1:3] == ["agents", "list"]:
        return ActionSpec("List agents", lsp.CodeActionKind.Empty, LIST, {})
    if words[1:2] != ["agents"] or len(words) < 4:
        return None
    verb, agent = words[2], {"agent": words[3]}
    if verb == "diff":
        return ActionSpec("Show the change", lsp.CodeActionKind.Empty, SHOW_DIFF, agent)
    if verb == "show":
        return ActionSpec("Show the agent", lsp.CodeActionKind.Empty, GET, agent)
    if verb == "moves":
        return ActionSpec("Show its moves", lsp.CodeActionKind.Empty, MOVES, agent)
    if verb == "archive":  # an auto-archive that failed: try it now
        return ActionSpec("Archive it", lsp.CodeActionKind.Empty, ARCHIVE, agent)
    if verb == "budget" and len(words) >= 5:
        try:
            if words[4] == "--tokens" and len(words) >= 6:
                tokens = int(words[5])
                return ActionSpec(f"Raise the budget to {tokens:,} tokens", lsp.CodeActionKind.Empty, BUDGET,
                                  {**agent, "tokens": tokens})
            usd = float(words[4])
        except ValueError:
            return None
        return ActionSpec(f"Raise the budget to ${usd:.2f}", lsp.CodeActionKind.Empty, BUDGET, {**agent, "usd": usd})
    return None


def notification_text(note: api.Notification) -> str:
    """A notification as one message: its title, then what it says."""
    return note.title + (f"\n{note.body}" if note.body else "")


def inbox_request(item: api.InboxItem) -> str:
    """What a request asks, exactly: its command(s) or path(s), else OpenCode's summary."""
    return " ".join(item.patterns) if item.patterns else item.summary


def inbox_choices(items: Sequence[api.InboxItem]) -> dict[str, api.InboxItem]:
    """The oldest pending requests as button titles (numbered, so each is unique) → the request."""
    ordered = sorted(items, key=lambda i: i.asked_at)[:INBOX_CHOICES]
    return {f"{n}. {_short(f'{i.agent_id} {i.tool}: {inbox_request(i)}', 70)}": i
            for n, i in enumerate(ordered, start=1)}


def inbox_question(item: api.InboxItem, now: float | None = None) -> str:
    """The question of one picked request: who asks for what, where, for how long, and its deadline."""
    waited = api.elapsed(item.asked_at, now)
    text = (f"Agent {item.agent_id} “{item.agent_title}” in {item.project_name} asks to {item.tool}: "
            f"{inbox_request(item)} (waiting {waited})")
    if item.deadline is not None:
        text += f"; {item.rule or 'a rule answers it'} at {_clock(item.deadline)}"
    if item.note:
        text += f". {item.note}"
    return text


def _clock(ts: float) -> str:
    return time.strftime("%H:%M", time.localtime(ts))


#: How many templates ``palot.templates`` offers as buttons (editors show a handful at most).
TEMPLATE_CHOICES = 8


def template_choices(templates: Sequence[api.Template]) -> dict[str, api.Template]:
    """The templates as button titles: the name, and the variables it needs (to fill in ``vars``)."""
    return {t.name + (f" ({', '.join(t.variables)})" if t.variables else ""): t
            for t in templates[:TEMPLATE_CHOICES]}


def template_spawn(template: api.Template, project: str) -> ActionSpec:
    """The button that spawns an agent from a template in ``project`` (a template without variables)."""
    return ActionSpec(f"Spawn from {template.name}", lsp.CodeActionKind.Empty, SPAWN,
                      {"template": template.name, "project": project})


def template_usage(template: api.Template) -> str:
    """How to spawn from a template that needs variables (an editor cannot ask for free text)."""
    example = ", ".join(f'"{v}": "…"' for v in template.variables)
    return (f"Template {template.name} needs {', '.join(template.variables)}: run palot.spawn with "
            f'{{"template": "{template.name}", "vars": {{{example}}}}}.')
# --- requesting changes and bulk actions ------------------------------------------------------

#: The comments ``palot.requestChanges`` offers as buttons when no ``comment`` is given: an editor cannot
#: ask for free text (``window/showMessageRequest`` has buttons only), so an extension that can (VS Code's
#: input box) passes its own ``comment``.
REVIEW_CHOICES = ("Undo this change", "Simplify this change", "Add a test for this change",
                  "Explain this change in a code comment")


def review_question(agent: api.Agent, path: str, first: int, last: int) -> str:
    lines = f"line {first}" if first == last else f"lines {first}-{last}"
    return f"What should agent {agent_label(agent)} change in {path}, {lines}?"


def bulk_question(plan: api.BulkResult) -> tuple[str, str] | None:
    """The question confirming a bulk plan and its one button, or None when the plan does nothing."""
    todo = [i for i in plan.items if i.outcome == "would"]
    if not todo:
        return None
    shown = "; ".join(f"{i.agent_id} “{_short(i.title, 40)}”" for i in todo[:8])
    more = f" and {len(todo) - 8} more" if len(todo) > 8 else ""
    skipped = plan.count("skipped")
    also = f" ({skipped} skipped)" if skipped else ""
    noun = f"{len(todo)} agent{'s' if len(todo) != 1 else ''}"
    verb = plan.operation.capitalize()
    return f"{verb} {noun}{also}: {shown}{more}?", f"{verb} {noun}"
