"""Terminal rendering of agents, activity, diffs, events and the service (used by the CLI and the demo).

Everything here builds ``Text`` from what users and agents wrote (titles, prompts,
paths, branches, errors, model output), never markup strings: a title such as
``fix [/write]`` is shown as written instead of breaking the listing.

One module per thing rendered (see README.md); every name is re-exported here (``render.agents_table``).
"""

from __future__ import annotations

from .agents import (
    COLUMNS,
    COMPACT_COLUMNS,
    DROP_ORDER,
    TITLE_MIN_WIDTH,
    AgentsTable,
    activity_line,
    agents_table,
    audit_line,
    diff_summary,
    message_text,
    patch_text,
)
from .basics import console, status_text
from .events import EventPrinter
from .housekeeping import BULK_STYLE, bulk_line, bulk_summary, du_text, gc_text
from .inbox import inbox_deadline, inbox_line, inbox_request, inbox_table
from .service import budget_text, overview_line, service_status, spend_text
from .settings import settings_text, toml_text
from .templates import template_scope, template_spawn_command, template_text, templates_text

__all__ = [
    "AgentsTable",
    "BULK_STYLE",
    "COLUMNS",
    "COMPACT_COLUMNS",
    "DROP_ORDER",
    "EventPrinter",
    "TITLE_MIN_WIDTH",
    "activity_line",
    "agents_table",
    "audit_line",
    "budget_text",
    "bulk_line",
    "bulk_summary",
    "console",
    "diff_summary",
    "du_text",
    "gc_text",
    "inbox_deadline",
    "inbox_line",
    "inbox_request",
    "inbox_table",
    "message_text",
    "overview_line",
    "patch_text",
    "service_status",
    "settings_text",
    "spend_text",
    "status_text",
    "template_scope",
    "template_spawn_command",
    "template_text",
    "templates_text",
    "toml_text",
]
