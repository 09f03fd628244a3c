"""Structured activity built from an agent's message parts (pure functions).

Each tool call becomes one line: a kind, a verb, a target and a short summary
("Editing src/app.py +3 -1"), the way the seed's activity stream shows work.
"""

from __future__ import annotations

import os
from typing import Any

from ..opencode import Message, Part
from .models import ActivityItem, AgentMessage


def _first_line(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _rel(path: str, root: str | None) -> str:
    if root and path.startswith(root.rstrip("/") + "/"):
        return os.path.relpath(path, root)
    return path


def _counts(text: str) -> int:
    return len(text.splitlines()) if text else 0


def _tool_line(tool: str, inp: dict[str, Any], state: dict[str, Any], root: str | None) -> tuple[str, str, str, str]:
    """(kind, verb, target, summary) for one tool call."""
    meta = state.get("metadata") or {}
    output = state.get("output") or ""
    path = _rel(str(inp.get("filePath") or inp.get("path") or ""), root)
    if tool == "read":
        return "read", "Reading", path, ""
    if tool == "write":
        return "write", "Writing", path, f"{_counts(str(inp.get('content', '')))} lines"
    if tool == "edit":
        fd = meta.get("filediff") or {}
        if "additions" in fd:
            return "edit", "Editing", path, f"+{fd.get('additions', 0)} -{fd.get('deletions', 0)}"
        return "edit", "Editing", path, f"+{_counts(str(inp.get('newString', '')))} -{_counts(str(inp.get('oldString', '')))}"
    if tool == "bash":
        summary = _first_line(str(meta.get("output") or output))
        if meta.get("exit") not in (None, 0):
            summary = f"exit {meta['exit']}: {summary}"
        return "bash", "Running", str(inp.get("command", "")), summary
    if tool == "grep":
        matches = meta.get("matches")
        return "grep", "Searching", str(inp.get("pattern", "")), f"{matches} matches" if matches is not None else ""
    if tool == "glob":
        count = meta.get("count")
        return "glob", "Finding", str(inp.get("pattern", "")), f"{count} files" if count is not None else ""
    if tool == "todowrite":
        todos = inp.get("todos") or []
        done = sum(1 for t in todos if isinstance(t, dict) and t.get("status") == "completed")
        return "todo", "Planning", "", f"{len(todos)} todos, {done} done"
    if tool == "task":
        return "task", "Delegating", str(inp.get("description", "")), ""
    if tool == "webfetch":
        return "web", "Fetching", str(inp.get("url", "")), ""
    return "tool", tool.capitalize() if tool else "Tool", _first_line(str(state.get("title") or "")), ""


def part_activity(part: Part, root: str | None) -> tuple[float, str, str, str, str, str] | None:
    """(time, kind, verb, target, summary, state) for a part worth showing, else None."""
    times = part.time or {}
    if part.type == "tool" and part.tool:
        state = part.state or {}
        inp = state.get("input") or {}
        status = str(state.get("status", "pending"))
        kind, verb, target, summary = _tool_line(part.tool, inp, state, root)
        if status == "error":
            summary = _first_line(str(state.get("error", "failed")))
        started = (state.get("time") or {}).get("start")
        return (started or 0) / 1000, kind, verb, target, summary, status
    if part.type == "text" and part.text and not (part.model_extra or {}).get("synthetic"):
        return (times.get("start") or 0) / 1000, "message", "Said", "", _first_line(part.text), "completed"
    if part.type == "reasoning" and part.text:
        return (times.get("start") or 0) / 1000, "thinking", "Thinking", "", _first_line(part.text), "completed"
    return None


def build_activity(messages: list[Message], root: str | None = None) -> list[ActivityItem]:
    """The agent's activity, oldest first, from its assistant messages' parts."""
    items: list[ActivityItem] = []
    for msg in messages:
        if msg.info.role != "assistant":
            continue
        base_time = msg.info.time.created / 1000
        for part in msg.parts:
            line = part_activity(part, root)
            if line is None:
                continue
            t, kind, verb, target, summary, state = line
            items.append(ActivityItem(index=len(items), id=part.id, time=t or base_time, kind=kind,
                                      verb=verb, target=target, summary=summary, state=state))
        if msg.info.error and msg.info.error.name != "MessageAbortedError":
            items.append(ActivityItem(index=len(items), id=f"{msg.info.id}-error", time=base_time,
                                      kind="error", verb="Failed", summary=msg.info.error.text, state="error"))
    return items


def simplify_messages(messages: list[Message]) -> list[AgentMessage]:
    """Messages as role, time, text and the tools used."""
    out: list[AgentMessage] = []
    for msg in messages:
        text = "\n".join(p.text for p in msg.parts if p.type == "text" and p.text)
        tools = [p.tool for p in msg.parts if p.type == "tool" and p.tool]
        out.append(AgentMessage(id=msg.info.id, role=msg.info.role, time=msg.info.time.created / 1000, text=text,
                                error=msg.info.error.text if msg.info.error else None, tools=tools))
    return out


def last_outcome(messages: list[Message]) -> tuple[bool, str | None, bool]:
    """(aborted, error, unfinished) of the newest assistant message, for resyncing status."""
    for msg in reversed(messages):
        if msg.info.role == "assistant":
            err = msg.info.error
            aborted = bool(err and err.name == "MessageAbortedError")
            # A step that ended asking for tools is not the turn's end: OpenCode was to call the model again
            # (its server died between the tool call and the next step).
            unfinished = err is None and (msg.info.time.completed is None or msg.info.finish == "tool-calls")
            return aborted, (err.text if err and not aborted else None), unfinished
        if msg.info.role == "user":
            return False, None, True  # a prompt with no answer yet
    return False, None, False
