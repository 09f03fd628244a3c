"""Every action of :data:`palot.api.ACTIONS`, as a coroutine method of the dashboard.

:data:`ACTION_CONTROLS` names the method that runs each action; each method takes its request's fields as
keyword arguments with the API's names (``agent`` defaults to the selected agent), sends them to the
service through ``palot.client`` and shows the answer. The dashboard's buttons and forms call these same
methods, so what a click does and what code does are one path.
"""

from __future__ import annotations

from .agent_controls import AgentControls
from .service_controls import ServiceControls

#: Each API action → the dashboard method that runs it (and that its controls call).
ACTION_CONTROLS: dict[str, str] = {
    "status": "service_status",
    "projects": "load_projects",
    "models": "load_models",
    "list": "reload",
    "get": "refresh",
    "spawn": "spawn",
    "prompt": "prompt",
    "abort": "abort",
    "reply": "reply",
    "wait": "wait",
    "activity": "load_activity",
    "messages": "load_messages",
    "diff": "load_diff",
    "apply": "apply",
    "create_pr": "create_pr",
    "archive": "archive",
    "pause": "pause",
    "resume": "resume",
    "destroy": "destroy",
    "environment": "load_environment",
    "move": "move",
    "moves": "load_moves",
    "audit": "load_audit",
    "budget": "set_budget",
    "inbox": "load_inbox",
    "inbox_reply": "reply_inbox",
    "settings": "load_settings",
    "templates": "load_templates",
    "template_show": "show_template",
    "template_add": "save_template",
    "template_remove": "remove_template",
    "retry": "retry",
    "request_changes": "request_changes",
    "bulk": "bulk_agents",
    "du": "load_disk_use",
    "gc": "collect_garbage",
}


class DashboardActions(ServiceControls, AgentControls):
    """The action methods of :class:`~palot_jupyter.Dashboard` (a mixin: the widgets live there).

    :class:`ServiceControls` holds those about the service as a whole, :class:`AgentControls` those about one
    agent; both build on :class:`~palot_jupyter.control_base.ControlsBase`.
    """
