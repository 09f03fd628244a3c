"""Pydantic models for the parts of OpenCode 1.18's API that Palot uses.

Shapes were checked against the server's own OpenAPI document (``GET /doc``).
Models allow extra fields so a newer server adding fields does not break Palot;
only what Palot reads is declared.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .failures import error_sentence


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Health(_Loose):
    healthy: bool
    version: str


class CacheTokens(_Loose):
    read: float = 0
    write: float = 0


class Tokens(_Loose):
    input: float = 0
    output: float = 0
    reasoning: float = 0
    cache: CacheTokens = Field(default_factory=CacheTokens)

    @property
    def total(self) -> int:
        return int(self.input + self.output + self.reasoning + self.cache.read + self.cache.write)


class SessionTime(_Loose):
    created: int
    updated: int
    archived: float | None = None


class PermissionRule(_Loose):
    permission: str
    pattern: str
    action: Literal["allow", "deny", "ask"]


class Session(_Loose):
    id: str
    slug: str | None = None
    projectID: str
    directory: str
    parentID: str | None = None
    title: str = ""
    version: str | None = None
    cost: float = 0
    tokens: Tokens = Field(default_factory=Tokens)
    time: SessionTime
    permission: list[PermissionRule] | None = None


class SessionStatus(_Loose):
    """``idle``, ``busy`` or ``retry`` (with attempt and message)."""

    type: str  # "idle", "busy" or "retry"; kept open so a newer server's states do not break parsing
    attempt: int | None = None
    message: str | None = None


class ToolCallRef(_Loose):
    messageID: str
    callID: str


class PermissionRequest(_Loose):
    id: str
    sessionID: str
    permission: str
    patterns: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    always: list[str] = Field(default_factory=list)
    tool: ToolCallRef | None = None


class MessageTime(_Loose):
    created: float
    completed: float | None = None


class MessageError(_Loose):
    """An assistant message's error: ``name`` is e.g. ``MessageAbortedError``."""

    name: str
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def text(self) -> str:
        """One sentence for people (no stack trace)."""
        return error_sentence(self.name, self.data)


class MessageInfo(_Loose):
    """User and assistant messages share this model; ``role`` tells which."""

    id: str
    sessionID: str
    role: Literal["user", "assistant"]
    time: MessageTime
    error: MessageError | None = None
    modelID: str | None = None
    providerID: str | None = None
    cost: float | None = None
    tokens: Tokens | None = None
    finish: str | None = None


class Part(_Loose):
    """A message part; ``type`` is text, reasoning, tool, step-start, step-finish, file, patch …"""

    id: str
    sessionID: str
    messageID: str
    type: str
    text: str | None = None
    tool: str | None = None
    callID: str | None = None
    state: dict[str, Any] | None = None
    time: dict[str, Any] | None = None


class Message(_Loose):
    info: MessageInfo
    parts: list[Part] = Field(default_factory=list)


class EventPayload(_Loose):
    id: str | None = None
    type: str
    properties: dict[str, Any] = Field(default_factory=dict)


class GlobalEvent(_Loose):
    """One event from ``/global/event``: a directory's event wrapped with its directory."""

    directory: str | None = None
    project: str | None = None
    payload: EventPayload

    @property
    def type(self) -> str:
        return self.payload.type

    @property
    def session_id(self) -> str | None:
        """The session an event concerns, wherever the event type keeps it."""
        props = self.payload.properties
        sid = props.get("sessionID")
        if sid:
            return sid
        for key in ("info", "part"):
            inner = props.get(key)
            if isinstance(inner, dict) and isinstance(inner.get("sessionID"), str):
                return inner["sessionID"]
        return None
