"""``$PALOT_HOME/settings.toml``: the fleet policies a person sets — budgets, permission rules, notifications,
housekeeping (auto-archive), warm containers.

The service reads the file at start and again whenever it changes. A file with a mistake is refused with
the line it is on (``settings.toml line 7: rules[1].tool: unknown tool 'bsh' …``) and the service keeps the
last good settings, so a typo never turns a policy off. Every field is documented in ``docs/settings.md``.
"""

from __future__ import annotations

import fnmatch
import re
import time
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .. import api
from ..errors import SettingsInvalid

Kind = Literal["needs_you", "done"]
_ALL_KINDS: list[Kind] = ["needs_you", "done"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BudgetSettings(_Strict):
    """``[budgets]``: the defaults for every agent, and the fleet's daily limit."""

    agent_usd: float | None = Field(None, gt=0, description="each new agent's budget in USD")
    agent_tokens: int | None = Field(None, gt=0, description="each new agent's budget in tokens")
    day_usd: float | None = Field(None, gt=0, description="all agents together, per calendar day")
    day_tokens: int | None = Field(None, gt=0, description="all agents together, per calendar day")
    warn_at: float = Field(0.8, gt=0, lt=1, description="the share of a budget that sends a 'needs you' warning")
    cloud_poll_seconds: float = Field(60, ge=1, description="how often cloud running time is counted toward budgets")


class HousekeepingSettings(_Strict):
    """``[housekeeping]``: what the service tidies by itself."""

    archive_completed_after_hours: float = Field(
        24, ge=0, description="archive completed agents unchanged for this long (0: never); waiting ones never")
    release_idle_minutes: float = Field(
        10, ge=0, description="unload from OpenCode a worktree whose agents have all settled and that has been "
        "quiet this long, freeing its memory (0: never); it loads again on the next prompt")
    check_seconds: float = Field(60, ge=0.1, description="how often the service looks for agents to archive "
                                 "and for idle worktrees")


class ProjectSettings(_Strict):
    """``[projects."PATH-OR-NAME"]``: a project's own defaults for its new agents."""

    agent_usd: float | None = Field(None, gt=0)
    agent_tokens: int | None = Field(None, gt=0)


class Rule(_Strict):
    """``[[rules]]``: answer a permission request by tool and pattern, or give a person a deadline."""

    project: str = Field("*", description="a project's path or name, or * for every project")
    tool: str = Field(description="the permission asked for (bash, edit, read, webfetch …) or *")
    pattern: str = Field("*", description="a glob over the request's command or path, e.g. 'npm test*'")
    action: Literal["allow", "deny", "ask"] = Field(description="allow or deny at once, or ask a person")
    timeout_minutes: float | None = Field(None, gt=0, description="with ask: answer after this long")
    on_timeout: Literal["reject", "allow"] = Field("reject", description="the answer when the time is up")
    message: str | None = Field(None, description="a note to the agent with a denial")

    @field_validator("tool")
    @classmethod
    def _tool(cls, v: str) -> str:
        if v != "*" and v not in api.PERMISSION_TOOLS:
            raise ValueError(f"unknown tool '{v}': use * or one of {', '.join(api.PERMISSION_TOOLS)}")
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the pattern is empty: use * for any command or path")
        if v.count("[") != v.count("]"):
            raise ValueError(f"bad pattern '{v}': a '[' has no matching ']' (write [[] for a literal '[')")
        return v

    @model_validator(mode="after")
    def _timeout_needs_ask(self) -> "Rule":
        if self.timeout_minutes is not None and self.action != "ask":
            raise ValueError(f"timeout_minutes applies to action = \"ask\" (this rule answers '{self.action}' at once)")
        return self

    def matches(self, project_path: str, project_name: str, tool: str, patterns: list[str]) -> bool:
        if self.project != "*" and not _same_project(self.project, project_path, project_name):
            return False
        if self.tool != "*" and self.tool != tool:
            return False
        targets = patterns or [""]
        return all(fnmatch.fnmatchcase(t, self.pattern) for t in targets)

    def describe(self, number: int) -> str:
        """``rule 2: allow bash 'npm test*'`` — how the audit log and notifications name it."""
        where = "" if self.project == "*" else f" in {self.project}"
        return f"rule {number}: {self.action} {self.tool} '{self.pattern}'{where}"


class DesktopSettings(_Strict):
    enabled: bool = False  # the seed's default: off until a person turns it on
    sound: bool = False
    kinds: list[Kind] = Field(default_factory=lambda: list(_ALL_KINDS))


class EditorSettings(_Strict):
    """Front ends: MCP clients, editors through palot-lsp, the notebook."""

    kinds: list[Kind] = Field(default_factory=lambda: list(_ALL_KINDS))


class Webhook(_Strict):
    url: str
    format: Literal["slack", "discord"] = "slack"
    kinds: list[Kind] = Field(default_factory=lambda: ["needs_you"])

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"https?://[^\s/]+", v):
            raise ValueError("a webhook url starts with https:// (or http:// for a local server)")
        return v


class NotificationSettings(_Strict):
    coalesce_seconds: float = Field(1.0, ge=0, le=60, description="notifications within this long are one")
    desktop: DesktopSettings = Field(default_factory=DesktopSettings)
    editors: EditorSettings = Field(default_factory=EditorSettings)
    webhooks: list[Webhook] = Field(default_factory=list)


class PortSettings(_Strict):
    """``[ports]``: each live agent's own range of dev-server ports (``PALOT_PORT``, ``PALOT_PORTS``)."""

    base: int = Field(41000, ge=1024, le=65000, description="where the first agent's range starts")
    per_agent: int = Field(10, ge=1, le=100, description="how many ports each agent gets")


class ContainerSettings(_Strict):
    """``[containers]``: container environments started ahead of need."""

    warm_pool: int = Field(1, ge=0, le=8, description="containers kept started, per set of limits spawns use, "
                           "so a container spawn or move skips the start (0: none)")


class GcSettings(_Strict):
    """``[gc]``: the service's daily sweep for what no agent owns (``palot gc``)."""

    daily: bool = Field(True, description="look for orphans once a day and notify when there are some")
    remove: bool = Field(False, description="also remove the safe ones (never work that was not merged)")
    first_after_seconds: float = Field(600, ge=0, description="the first look, this long after the service starts")


class Settings(_Strict):
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    projects: dict[str, ProjectSettings] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    housekeeping: HousekeepingSettings = Field(default_factory=HousekeepingSettings)
    ports: PortSettings = Field(default_factory=PortSettings)
    containers: ContainerSettings = Field(default_factory=ContainerSettings)
    gc: GcSettings = Field(default_factory=GcSettings)

    def project(self, project_path: str, project_name: str) -> ProjectSettings | None:
        for key, value in self.projects.items():
            if _same_project(key, project_path, project_name):
                return value
        return None


def _same_project(key: str, path: str, name: str) -> bool:
    if "/" in key or key.startswith("~"):
        return Path(key).expanduser().resolve(strict=False) == Path(path)
    return key == name


# --- reading the file -------------------------------------------------------------------------


def parse(text: str, source: str = "settings.toml") -> Settings:
    """The settings in ``text``, or :class:`SettingsInvalid` naming the line of the first mistake."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsInvalid(f"{source}: {e}", f"fix the TOML syntax in {source}") from None
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        loc = tuple(first.get("loc", ()))
        where = _dotted(loc)
        line = _line_of(text, loc)
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        if first.get("type") == "extra_forbidden":
            msg = f"unknown setting '{loc[-1]}'"
        at = f" line {line}" if line else ""
        raise SettingsInvalid(f"{source}{at}: {where}: {msg}",
                              f"fix {where} in {source} (see docs/settings.md); the last good settings stay in use"
                              ) from None


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the file"


_KEY = r'(?:"(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)'


def _keys(dotted: str) -> tuple[str, ...]:
    return tuple(k.strip().strip('"').strip("'") for k in re.findall(_KEY, dotted))


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line a validation error's location is written on (the key's, else its table's header)."""
    lines: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    arrays: dict[tuple[Any, ...], int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[["):
            path = _keys(line.strip("[] "))
            arrays[path] = arrays.get(path, -1) + 1
            table = (*path, arrays[path])
            lines.setdefault(table, number)
        elif line.startswith("["):
            table = _keys(line.strip("[] "))
            lines.setdefault(table, number)
        elif "=" in line and not line.startswith("#"):
            key = _keys(line.split("=", 1)[0])
            lines.setdefault((*table, *key), number)
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


class SettingsFile:
    """The settings in use, re-read when the file changes; a bad file keeps the last good settings."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current = Settings()
        self.loaded_at: float | None = None
        self.error: str | None = None
        self._stamp: tuple[float, int] | None = None

    def refresh(self) -> bool:
        """Read the file again if it changed since last time; True when the settings in use changed."""
        try:
            st = self.path.stat()
            stamp: tuple[float, int] | None = (st.st_mtime, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp and (self.loaded_at is not None or self.error is not None or stamp is None):
            return False
        self._stamp = stamp
        if stamp is None:  # no file (any more): the defaults
            changed = self.current != Settings() or self.error is not None
            self.current, self.loaded_at, self.error = Settings(), None, None
            return changed
        try:
            settings = parse(self.path.read_text(), self.path.name)
        except SettingsInvalid as e:
            self.error = str(e)
            return False
        except OSError as e:
            self.error = f"cannot read {self.path}: {e.strerror}"
            return False
        changed = settings != self.current
        self.current, self.loaded_at, self.error = settings, time.time(), None
        return changed

    def view(self) -> api.SettingsView:
        return api.SettingsView(path=str(self.path), loaded_at=self.loaded_at, error=self.error,
                                settings=self.current.model_dump(mode="json"))
