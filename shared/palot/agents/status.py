"""Deriving an agent's status from what OpenCode reports (pure, tested without a server).

Owns :class:`LiveState` (what the event stream said about one session), :func:`follow` (one OpenCode event
applied to it), :func:`derive_status` (the status it means) and :func:`permission_views` (its pending
requests as shown).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api import permission_summary
from ..opencode import GlobalEvent
from ..opencode.failures import error_sentence
from .models import AgentStatus, PermissionView

# The error of an agent whose turn ended because its OpenCode server stopped (killed, crashed) mid-turn.
INTERRUPTED = "interrupted: the OpenCode server stopped during this turn; prompt the agent to continue"


@dataclass
class LiveState:
    """What the event stream has told Palot about one agent's session."""

    busy: bool = False
    prompt_pending: bool = False  # a prompt was sent and its turn has not started yet
    prompted_at: float = 0.0  # when this process sent that prompt (time.monotonic())
    prompted_wall: float = 0.0  # the same, in unix seconds (to tell it among the session's messages)
    prompt_sending: bool = False  # that prompt's request has not been answered yet (it may not be stored)
    events: int = 0  # how many of its session's events were followed (a resync's reads may predate the last)
    aborted: bool = False
    error: str | None = None
    env_error: str | None = None  # the environment failed the agent (out of memory, engine gone); sticky until prompted
    permissions: dict[str, dict] = field(default_factory=dict)
    tokens: int = 0
    cost: float = 0.0
    provisioning: bool = False
    migrating: bool = False


def derive_status(live: LiveState, *, archived: bool = False) -> AgentStatus:
    """Map session status, pending permissions and errors to one agent status.

    Order matters: a pending permission means waiting even though the session
    is busy; an abort is a pause (the user can resume), any other error a failure;
    an environment that failed its agent overrides a "busy" it can no longer report.
    """
    if archived:
        return AgentStatus.ARCHIVED
    if live.migrating:
        return AgentStatus.MIGRATING
    if live.provisioning:
        return AgentStatus.PROVISIONING
    if live.permissions:
        return AgentStatus.WAITING
    if (live.busy or live.prompt_pending) and not live.env_error:
        return AgentStatus.RUNNING
    if live.aborted:
        return AgentStatus.PAUSED
    if live.error or live.env_error:
        return AgentStatus.FAILED
    return AgentStatus.COMPLETED


def follow(live: LiveState, event: GlobalEvent) -> bool:
    """Update a session's live state from one OpenCode event; False if the event says nothing about it."""
    kind, props = event.type, event.payload.properties
    if kind == "session.status":
        st = (props.get("status") or {}).get("type")
        live.busy = st in ("busy", "retry")
        if live.busy:  # a turn runs: whatever ended the last one (an abort, an error) is over
            live.prompt_pending = live.aborted = False
            live.error = None
        else:
            live.permissions.clear()  # an idle session asks nothing (an abort answers no request)
    elif kind == "session.idle":
        live.busy = live.prompt_pending = False
        live.permissions.clear()
    elif kind == "session.error":
        err = props.get("error") or {}
        name = err.get("name", "Error")
        if name == "MessageAbortedError":
            live.aborted = True
        else:
            live.error = error_sentence(name, err.get("data"))
    elif kind == "permission.asked":
        live.permissions[str(props.get("id"))] = dict(props)
    elif kind == "permission.replied":
        live.permissions.pop(str(props.get("requestID")), None)
    elif kind == "session.updated":
        info = props.get("info") or {}
        tokens = info.get("tokens") or {}
        cache = tokens.get("cache") or {}
        live.tokens = int(sum(tokens.get(k, 0) or 0 for k in ("input", "output", "reasoning"))
                          + (cache.get("read", 0) or 0) + (cache.get("write", 0) or 0))
        live.cost = float(info.get("cost") or 0)
    else:
        return False
    live.events += 1
    return True


def permission_views(live: LiveState) -> list[PermissionView]:
    """The session's pending permission requests, as an agent's view shows them."""
    return [
        PermissionView(id=pid, permission=str(p.get("permission", "")), patterns=list(p.get("patterns") or []),
                       summary=permission_summary(str(p.get("permission", "permission")),
                                                  list(p.get("patterns") or [])))
        for pid, p in live.permissions.items()
    ]
