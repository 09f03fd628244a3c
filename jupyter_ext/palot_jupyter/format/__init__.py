"""What the dashboard shows, as plain data and HTML strings (pure: tested without a kernel or browser).

Icons are the API's (``palot.api.STATUS_STYLE``, ``KIND_ICON``), as in the terminal; colours are the seed's status
system. Widgets only put these strings on screen. One module per thing shown: :mod:`.badges` (numbers, times,
badges), :mod:`.listing` (the agent list and its filters), :mod:`.summary` (the overview), :mod:`.detail` (one
agent's panel), :mod:`.moving` (moving an agent) and :mod:`.notes` (notifications and the inbox); every name is
importable from here too.
"""

from __future__ import annotations

from .badges import (
    ENVIRONMENT_BADGE,
    LIVE,
    STATUS_COLOR,
    ago,
    cost,
    elapsed,
    environment_badge,
    esc,
    note,
    status_badge,
    status_icon,
    tokens,
)
from .detail import (
    DIFF_LINES_PER_FILE,
    actions,
    activity_entry,
    budget_text,
    detail_header_html,
    diff_html,
    permission_html,
)
from .listing import ALL, ROW_CELLS, Facets, Filters, facets, row_cells, sort_key, visible
from .moving import (
    MOVE_NOUN,
    can_move,
    move_plan_html,
    move_progress_html,
    move_result_text,
    move_targets,
)
from .notes import NOTE_STYLE, inbox_item_html, notification_html
from .summary import (
    ATTENTION,
    Overview,
    OverviewItem,
    inbox_count_html,
    overview,
    overview_html,
    overview_item_html,
    sidebar_today_html,
    start_of_day,
)

__all__ = [
    "ALL", "ATTENTION", "DIFF_LINES_PER_FILE", "ENVIRONMENT_BADGE", "LIVE", "MOVE_NOUN", "NOTE_STYLE", "ROW_CELLS",
    "STATUS_COLOR", "Facets", "Filters", "Overview", "OverviewItem", "actions", "activity_entry", "ago",
    "budget_text", "can_move", "cost", "detail_header_html", "diff_html", "elapsed", "environment_badge", "esc",
    "facets", "inbox_count_html", "inbox_item_html", "move_plan_html", "move_progress_html", "move_result_text",
    "move_targets", "note", "notification_html", "overview", "overview_html", "overview_item_html",
    "permission_html", "row_cells", "sidebar_today_html", "sort_key", "start_of_day", "status_badge",
    "status_icon", "tokens", "visible",
]
