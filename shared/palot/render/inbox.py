"""The inbox in the terminal: pending permission requests (what is asked, exactly, and when a rule answers it),
and the requests a reply answered. Text is built from what users and agents wrote, never markup strings (see
README.md)."""

from __future__ import annotations

import time

from rich.text import Text

from .. import api
from ..api import elapsed


def inbox_request(item: api.InboxItem) -> str:
    """What is asked, exactly: the command(s) or path(s), else OpenCode's summary."""
    return "\n".join(item.patterns) if item.patterns else item.summary


def inbox_deadline(item: api.InboxItem, now: float | None = None) -> str:
    """``in 4m05s (rule 2: ask bash 'git push*')`` when a rule answers the request at a deadline, else ""."""
    if item.deadline is None:
        return item.rule or ""
    now = now or time.time()
    left = "now" if item.deadline <= now else "in " + elapsed(now, item.deadline)
    return left + (f" ({item.rule})" if item.rule else "")


def inbox_table(items: list[api.InboxItem]) -> Text:
    """``palot inbox``: one block per pending request, oldest first. Ids and the exact command or path are
    never cut or wrapped mid-word by a narrow terminal: they are what you copy and what you approve."""
    out = Text()
    for n, item in enumerate(sorted(items, key=lambda i: i.asked_at)):
        if n:
            out.append("\n")
        out.append_text(Text.assemble((item.permission_id, "bold"), "  ", (item.agent_id, "cyan"),
                                      f" “{item.agent_title}”  {item.project_name}  ",
                                      (f"waited {elapsed(item.asked_at)}", "bright_black"), "\n"))
        for line in inbox_request(item).splitlines() or [""]:
            out.append_text(Text.assemble("  ", (item.tool, "yellow"), f": {line}\n"))
        deadline = inbox_deadline(item)
        if deadline:
            out.append_text(Text.assemble("  ", ("answered " + deadline, "red"), "\n"))
        if item.note:
            out.append_text(Text.assemble("  ", (item.note, "yellow"), "\n"))
    return out


def inbox_line(item: api.InboxItem) -> Text:
    """One answered request: ``ag_1 “title”  bash  npm test``."""
    return Text.assemble(f"  {item.agent_id} “{item.agent_title}”  ", (item.tool, "yellow"),
                         "  " + inbox_request(item).replace("\n", "; "))
