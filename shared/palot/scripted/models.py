"""Pydantic models for scripted-model scripts.

A :class:`Script` is a list of :class:`Scenario` objects plus a ``default``
list of turns. Each request from OpenCode is answered by exactly one
:class:`Turn`, chosen statelessly from the request itself (see
:mod:`palot.scripted.engine`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "Script",
    "ScriptError",
    "Scenario",
    "ToolCall",
    "Turn",
    "TurnError",
    "Usage",
    "format_validation_error",
]


class ScriptError(ValueError):
    """A script file could not be read, parsed or validated."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCall(_Model):
    """One tool call the scripted model makes.

    ``name`` is an OpenCode tool (``write``, ``edit``, ``bash``, ``read``,
    ``grep``, ``glob``, ``todowrite`` ...). String values inside ``arguments``
    (at any depth) are template-expanded.
    """

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class TurnError(_Model):
    """Answer the request with an HTTP error in OpenAI's error JSON shape.

    With ``times`` set, the error is returned only for the first ``times``
    identical requests (OpenCode retries 429/5xx); later retries get the rest
    of the turn (its text / tool calls) as a normal answer.
    """

    status: int = Field(default=500, ge=400, le=599)
    message: str = "Scripted error"
    type: str | None = None
    code: str | None = None
    times: int | None = Field(default=None, ge=1)


class Usage(_Model):
    """Token usage reported for a turn."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)


class Turn(_Model):
    """One model answer.

    At least one of ``text``, ``reasoning``, ``tool_calls`` or ``error`` must
    be set. ``delay`` is slept before the first byte, ``chunk_delay`` between
    streamed chunks.
    """

    text: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    delay: float = Field(default=0.0, ge=0, le=3600)
    chunk_delay: float = Field(default=0.0, ge=0, le=600)
    error: TurnError | None = None
    usage: Usage | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Turn:
        if self.text is None and self.reasoning is None and not self.tool_calls and self.error is None:
            raise ValueError("a turn needs at least one of 'text', 'reasoning', 'tool_calls', 'error'")
        return self


class Scenario(_Model):
    """A named conversation script chosen by the last user message.

    Exactly one of ``match`` (case-insensitive substring) or ``regex``
    (Python regular expression, searched case-insensitively) must be set.
    """

    name: str = Field(min_length=1)
    match: str | None = Field(default=None, min_length=1)
    regex: str | None = Field(default=None, min_length=1)
    turns: list[Turn] = Field(min_length=1)

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_matcher(self) -> Scenario:
        if (self.match is None) == (self.regex is None):
            raise ValueError("a scenario needs exactly one of 'match' or 'regex'")
        return self

    def matches(self, text: str) -> bool:
        """Whether this scenario answers a conversation whose last user text is ``text``."""
        if self.match is not None:
            return self.match.casefold() in text.casefold()
        assert self.regex is not None
        return re.search(self.regex, text, re.IGNORECASE) is not None


def _default_turns() -> list[Turn]:
    return [Turn(text="Done.")]


class Script(_Model):
    """A complete script: scenarios tried in order, then ``default``.

    ``title`` answers OpenCode's title generator: ``"auto"`` uses the first
    words of the user's prompt, any other string is used as is (templates
    allowed).
    """

    scenarios: list[Scenario] = Field(default_factory=list)
    default: list[Turn] = Field(default_factory=_default_turns, min_length=1)
    title: str = Field(default="auto", min_length=1)
    #: Demand ``Authorization: Bearer KEY`` where this is KEY's SHA-256 (hex): a script can require an API key
    #: without holding it, so it can travel in an image or a log while the key stays with the user.
    api_key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @field_validator("scenarios")
    @classmethod
    def _unique_names(cls, value: list[Scenario]) -> list[Scenario]:
        seen: set[str] = set()
        for scenario in value:
            if scenario.name in seen:
                raise ValueError(f"duplicate scenario name {scenario.name!r}")
            seen.add(scenario.name)
        return value

    def select(self, last_user: str) -> tuple[str | None, list[Turn]]:
        """Return ``(scenario name, turns)``; the name is ``None`` for ``default``."""
        for scenario in self.scenarios:
            if scenario.matches(last_user):
                return scenario.name, scenario.turns
        return None, self.default

    @classmethod
    def from_json(cls, text: str, *, source: str = "<string>") -> Script:
        """Parse and validate a script from JSON text.

        Raises :class:`ScriptError` with a one-line message naming the bad
        field (e.g. ``scenarios.0.turns.1.delay``).
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"{source}: invalid JSON: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ScriptError(f"{source}: {format_validation_error(exc)}") from None

    @classmethod
    def load(cls, path: str | Path) -> Script:
        """Load and validate a script from a JSON file (raises :class:`ScriptError`)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"{p}: cannot read script: {exc.strerror or exc}") from None
        return cls.from_json(text, source=str(p))


def format_validation_error(exc: ValidationError) -> str:
    """Render a pydantic error as ``loc: message; loc: message`` on one line."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "<root>"
        msg = err.get("msg", "invalid")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
