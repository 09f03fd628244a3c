"""Notifications (the dashboard's toast) and the inbox's pending permission requests (pure)."""

from __future__ import annotations

import time

from palot.api import InboxItem, Notification
from palot.api import elapsed as _elapsed

from .badges import esc

#: How each kind of notification looks: icon and CSS class (needs you stands out; done is calm).
NOTE_STYLE = {"needs_you": ("⚠", "palot-note-needs-you"), "done": ("✓", "palot-note-done"),
              "info": ("ℹ", "palot-note-info")}


def notification_html(note: Notification) -> str:
    """A notification as the dashboard's toast: "needs you" in amber with ⚠, "done" in green with ✓."""
    icon, cls = NOTE_STYLE.get(note.kind, NOTE_STYLE["info"])
    body = f'<div class="palot-note-body">{esc(note.body)}</div>' if note.body else ""
    action = f'<div class="palot-muted">→ <code>{esc(note.action)}</code></div>' if note.action else ""
    return (f'<div class="palot-note {cls}" title="{esc(note.reason)}">{icon} <b>{esc(note.title)}</b>'
            f'{body}{action}</div>')


def inbox_item_html(item: InboxItem, now: float | None = None) -> str:
    """One pending request: the agent, the exact command or path, how long it waits, a rule's deadline."""
    asks = "\n".join(item.patterns) if item.patterns else item.summary
    deadline = ""
    if item.deadline is not None:
        left = max(0.0, item.deadline - (now or time.time()))
        deadline = (f'<div class="palot-error">{esc(item.rule or "a rule answers it")} in '
                    f'{_elapsed(0, left)}</div>')
    return (f'<b>{esc(item.agent_title)}</b> <span class="palot-muted">{esc(item.agent_id)} · '
            f'{esc(item.project_name)} · waiting {_elapsed(item.asked_at, now)}</span>'
            f'<div><span class="palot-badge">{esc(item.tool)}</span> <code class="palot-asks">{esc(asks)}</code></div>'
            f'{deadline}' + (f'<div class="palot-muted">{esc(item.note)}</div>' if item.note else ''))
