"""Stateless request analysis and reply planning for the scripted model.

Everything here is pure: given a chat-completions request body and a
:class:`~palot.scripted.models.Script`, :func:`plan_reply` decides the answer,
and :func:`stream_chunks` / :func:`completion_body` render it in OpenAI's wire
format. The HTTP layer lives in :mod:`palot.scripted.server`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .models import Script, Turn, TurnError

__all__ = [
    "PlannedReply",
    "RequestView",
    "analyze_request",
    "completion_body",
    "error_body",
    "expand",
    "plan_reply",
    "stream_chunks",
]

_WORKDIR_RE = re.compile(r"^\s*Working directory:\s*(.+?)\s*$", re.MULTILINE)
_VARIABLES = "workdir|last_user|first_user|user_count|message_count|turn"
_TEMPLATE_RE = re.compile(r"\{\{(" + _VARIABLES + r")\}\}|\{(" + _VARIABLES + r")\}")
_FALLBACK_TEXT = "Done."
_TITLE_WORDS = 6
_TITLE_MAX = 60


def content_text(content: Any) -> str:
    """Flatten an OpenAI message ``content`` (string or list of parts) to text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
        return "\n".join(out)
    return str(content)


@dataclass(frozen=True)
class RequestView:
    """The facts about a request that drive the script."""

    messages: list[dict[str, Any]]
    has_tools: bool
    last_user: str
    turn: int
    workdir: str
    message_count: int
    first_user: str = ""  # the conversation's first user text: shows the model received the whole history
    user_count: int = 0

    @property
    def variables(self) -> dict[str, str]:
        """Template variables for ``text`` and tool arguments."""
        return {
            "workdir": self.workdir,
            "last_user": self.last_user,
            "first_user": self.first_user,
            "user_count": str(self.user_count),
            "message_count": str(self.message_count),
            "turn": str(self.turn),
        }


def analyze_request(body: dict[str, Any]) -> RequestView:
    """Extract the last user text, turn index, working directory, ... from a request."""
    raw = body.get("messages")
    messages: list[dict[str, Any]] = [m for m in raw if isinstance(m, dict)] if isinstance(raw, list) else []
    last_user_idx = -1
    for i, m in enumerate(messages):
        if m.get("role") == "user":
            last_user_idx = i
    last_user = content_text(messages[last_user_idx].get("content")) if last_user_idx >= 0 else ""
    users = [m for m in messages if m.get("role") == "user"]
    turn = sum(1 for m in messages[last_user_idx + 1 :] if m.get("role") == "assistant")
    workdir = ""
    for m in messages:
        if m.get("role") == "system":
            found = _WORKDIR_RE.search(content_text(m.get("content")))
            if found:
                workdir = found.group(1)
                break
    tools = body.get("tools")
    return RequestView(
        messages=messages,
        has_tools=bool(tools),
        last_user=last_user,
        turn=turn,
        workdir=workdir,
        message_count=len(messages),
        first_user=content_text(users[0].get("content")) if users else "",
        user_count=len(users),
    )


def expand(value: Any, variables: dict[str, str]) -> Any:
    """Expand ``{workdir}``-style templates in strings, recursively.

    Only the known names are replaced, so code with braces is safe;
    ``{{workdir}}`` yields a literal ``{workdir}``.
    """
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            if m.group(1):
                return "{" + m.group(1) + "}"
            return variables.get(m.group(2), "")

        return _TEMPLATE_RE.sub(repl, value)
    if isinstance(value, list):
        return [expand(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, variables) for k, v in value.items()}
    return value


@dataclass
class PlannedTool:
    """A tool call ready to send: unique id, name and JSON-encoded arguments."""

    id: str
    name: str
    arguments: str


@dataclass
class PlannedReply:
    """The decided answer to one request."""

    kind: Literal["title", "summary", "scenario", "default"]
    scenario: str | None
    turn: int
    text: str | None = None
    reasoning: str | None = None
    tool_calls: list[PlannedTool] = field(default_factory=list)
    error: TurnError | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    def summary(self) -> dict[str, Any]:
        """A JSON-able description for the request log."""
        return {
            "kind": self.kind,
            "scenario": self.scenario,
            "turn": self.turn,
            "error": self.error.status if self.error else None,
            "tool_calls": [t.name for t in self.tool_calls],
            "finish_reason": None if self.error else self.finish_reason,
        }


def make_title(script: Script, view: RequestView) -> str:
    """The answer to OpenCode's title generator."""
    if script.title != "auto":
        return str(expand(script.title, view.variables)).strip() or "Scripted session"
    words = view.last_user.split()
    title = " ".join(words[:_TITLE_WORDS]).strip(" .,:;!?\"'`")
    if len(title) > _TITLE_MAX:
        title = title[:_TITLE_MAX].rstrip()
    return title or "Scripted session"


def is_compaction(view: RequestView) -> bool:
    """Whether a tool-less request is OpenCode's context compaction (``/summarize``)."""
    for m in view.messages:
        text = content_text(m.get("content"))
        if m.get("role") == "system" and "summarization agent" in text:
            return True
    return "<conversation>" in view.last_user and "summary" in view.last_user


def make_summary(view: RequestView) -> str:
    """A deterministic compaction summary in OpenCode's requested layout."""
    found = re.search(r"^\[User\]:\s*(.+)$", view.last_user, re.MULTILINE)
    objective = found.group(1).strip() if found else "(none)"
    return (
        f"## Objective\n- {objective}\n\n"
        "## Important Details\n- Replayed by Palot's scripted model.\n\n"
        "## Work State\n### Completed\n- (none)\n\n### Active\n- (none)\n\n### Blocked\n- (none)\n\n"
        "## Next Move\n1. (none)\n\n"
        "## Relevant Files\n- (none)\n"
    )


def _estimate_tokens(chars: int) -> int:
    return max(1, (chars + 3) // 4)


def _fingerprint(view: RequestView) -> str:
    data = json.dumps(view.messages, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()


def plan_reply(
    script: Script,
    view: RequestView,
    error_allowed: Callable[[str, TurnError], bool] | None = None,
) -> PlannedReply:
    """Decide the answer to a request.

    ``error_allowed(key, error)`` is consulted for errors with ``times`` set;
    it should count calls per ``key`` and return ``False`` once ``times`` is
    exhausted (the server keeps that counter).
    """
    prompt_tokens = _estimate_tokens(len(json.dumps(view.messages, default=str)))
    if not view.has_tools:
        compaction = is_compaction(view)
        title = make_summary(view) if compaction else make_title(script, view)
        return PlannedReply(
            kind="summary" if compaction else "title",
            scenario=None,
            turn=view.turn,
            text=title,
            prompt_tokens=prompt_tokens,
            completion_tokens=_estimate_tokens(len(title)),
        )
    name, turns = script.select(view.last_user)
    kind: Literal["scenario", "default"] = "scenario" if name is not None else "default"
    if view.turn < len(turns):
        turn: Turn = turns[view.turn]
    else:
        last_text = next((t.text for t in reversed(turns) if t.text), None)
        turn = Turn(text=last_text or _FALLBACK_TEXT)
    variables = view.variables
    reply = PlannedReply(
        kind=kind,
        scenario=name,
        turn=view.turn,
        text=expand(turn.text, variables) if turn.text is not None else None,
        reasoning=expand(turn.reasoning, variables) if turn.reasoning is not None else None,
        delay=turn.delay,
        chunk_delay=turn.chunk_delay,
    )
    for call in turn.tool_calls:
        args = expand(call.arguments, variables)
        reply.tool_calls.append(
            PlannedTool(id="call_" + uuid.uuid4().hex[:24], name=call.name, arguments=json.dumps(args))
        )
    if turn.error is not None:
        if turn.error.times is None or error_allowed is None:
            reply.error = turn.error
        else:
            key = f"{name}\x00{view.turn}\x00{_fingerprint(view)}"
            if error_allowed(key, turn.error):
                reply.error = turn.error
        if reply.error is None and reply.text is None and reply.reasoning is None and not reply.tool_calls:
            reply.text = _FALLBACK_TEXT
    out_chars = len(reply.text or "") + len(reply.reasoning or "")
    out_chars += sum(len(t.name) + len(t.arguments) for t in reply.tool_calls)
    if turn.usage is not None:
        reply.prompt_tokens = turn.usage.prompt_tokens
        reply.completion_tokens = turn.usage.completion_tokens
    else:
        reply.prompt_tokens = prompt_tokens
        reply.completion_tokens = _estimate_tokens(out_chars)
    return reply


# ---------------------------------------------------------------- wire format


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def usage_dict(reply: PlannedReply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def split_text(text: str, words_per_chunk: int = 3) -> list[str]:
    """Split text into chunks of a few words, keeping all whitespace."""
    pieces = re.findall(r"\s*\S+\s*|\s+", text)
    if not pieces:
        return [text] if text else []
    return ["".join(pieces[i : i + words_per_chunk]) for i in range(0, len(pieces), words_per_chunk)]


def split_arguments(arguments: str) -> list[str]:
    """Split a JSON argument string into two or three fragments."""
    if len(arguments) < 8:
        return [arguments]
    third = len(arguments) // 3
    return [arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]


def stream_chunks(reply: PlannedReply, *, model: str, include_usage: bool = True) -> Iterator[dict[str, Any]]:
    """Yield ``chat.completion.chunk`` objects for a (non-error) reply."""
    cid = new_completion_id()
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "palot-scripted",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    if reply.reasoning:
        for piece in split_text(reply.reasoning):
            yield chunk({"reasoning_content": piece})
    if reply.text:
        for piece in split_text(reply.text):
            yield chunk({"content": piece})
    for index, tool in enumerate(reply.tool_calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": tool.id,
                        "type": "function",
                        "function": {"name": tool.name, "arguments": ""},
                    }
                ]
            }
        )
        for fragment in split_arguments(tool.arguments):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    yield chunk({}, reply.finish_reason)
    if include_usage:
        yield {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "palot-scripted",
            "choices": [],
            "usage": usage_dict(reply),
        }


def completion_body(reply: PlannedReply, *, model: str) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object for a (non-error) reply."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}
            for t in reply.tool_calls
        ]
    return {
        "id": new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "palot-scripted",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": usage_dict(reply),
    }


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str, type_: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON shape."""
    if type_ is None:
        type_ = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}
