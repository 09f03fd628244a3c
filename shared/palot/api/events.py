"""Events: what the service's stream says as it happens (agents, activity, files, permissions, moves), and the
notifications a person should hear of."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from .agents import ActivityItem, Agent, PermissionView

AGENT_CREATED = "agent.created"
AGENT_UPDATED = "agent.updated"
AGENT_REMOVED = "agent.removed"
ACTIVITY = "agent.activity"
FILE_CHANGED = "agent.file"
PERMISSION_ASKED = "permission.asked"
PERMISSION_ANSWERED = "permission.answered"
MOVE_PROGRESS = "move.progress"
NOTIFICATION = "notification"
#: The service's connection to OpenCode came back: views may have missed changes, re-read them.
RESYNC = "resync"
EVENT_TYPES = (AGENT_CREATED, AGENT_UPDATED, AGENT_REMOVED, ACTIVITY, FILE_CHANGED, PERMISSION_ASKED,
               PERMISSION_ANSWERED, MOVE_PROGRESS, NOTIFICATION, RESYNC)
#: The two kinds of notification: an agent waits on a person, or something finished.
NOTIFICATION_KINDS = ("needs_you", "done")


class Notification(BaseModel):
    """Something a person should hear of: an agent needs them, or something is done. Several of one kind
    within a moment are one notification (``agent_ids`` names them all)."""

    kind: Literal["needs_you", "done", "info"]
    title: str
    body: str = ""
    action: str | None = None  # the next thing to do, e.g. a command
    reason: str = ""  # permission, budget_warning, budget_reached, failed, move_failed, environment_lost, gc,
    #                   completed, moved, archived, auto_archived, auto_archive_failed, rule_timeout, settings
    agent_ids: list[str] = Field(default_factory=list)
    time: float = Field(default_factory=time.time)


class Event(BaseModel):
    """One Palot-level event on the service's stream. Which fields are set depends on ``type``."""

    type: str
    time: float = Field(default_factory=time.time)
    agent_id: str | None = None
    agent: Agent | None = None  # agent.created / agent.updated: the full view
    item: ActivityItem | None = None  # agent.activity: the item, when it could be read from the event
    path: str | None = None  # agent.file: relative to the agent's environment
    host_path: str | None = None  # agent.file: the file on this machine
    ranges: list[tuple[int, int]] | None = None  # agent.file: changed lines (1-based, inclusive) of the new file
    patch: str | None = None  # agent.file: the file's diff against the agent's base, as read for ``ranges``
    permission: PermissionView | None = None  # permission.asked
    permission_id: str | None = None  # permission.answered
    reply: str | None = None
    step: str | None = None  # move.progress
    target: str | None = None  # move.progress: the environment type the agent moves to
    message: str | None = None  # move.progress, resync
    notification: Notification | None = None
