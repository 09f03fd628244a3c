"""What every rendering uses: a Console that prints strings as written, and an agent's status as icon and colour.
Text is built from what users and agents wrote, never markup strings (see README.md)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from ..api import STATUS_STYLE, AgentStatus


def status_text(status: AgentStatus) -> Text:
    icon, style = STATUS_STYLE[status]
    return Text(f"{icon} {status.value}", style=style)


def console(**kwargs: Any) -> Console:
    """A Console that prints strings as they are: no markup, no ``:emoji:`` codes (style with ``Text``)."""
    return Console(markup=False, emoji=False, **kwargs)
