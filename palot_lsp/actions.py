"""Which code actions to offer for a range of a file (pure).

| when | action | command |
|---|---|---|
| a selection | Ask an agent about this · Fix with an agent | ``palot.spawn`` with the file and range |
| another server's diagnostic in the context | Fix this diagnostic with an agent | ``palot.spawn`` with the diagnostic |
| lines an agent changed | Show the agent's change · Apply the agent's change to this file | ``palot.showDiff`` · ``palot.apply`` |
| a pending permission request | Allow once · Allow always · Reject | ``palot.replyPermission`` |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types as lsp

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

ASK_TITLE = "Ask an agent about this"
FIX_TITLE = "Fix with an agent"
FIX_DIAGNOSTIC_TITLE = "Fix this diagnostic with an agent"
SHOW_CHANGE_TITLE = "Show the agent's change"
APPLY_CHANGE_TITLE = "Apply the agent's change to this file"


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
