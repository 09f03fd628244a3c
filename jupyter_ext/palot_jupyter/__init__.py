"""Palot's Jupyter dashboard: ``from palot_jupyter import Dashboard; Dashboard()``.

Three columns, as in Palot's design: filters (projects, statuses,
environments, today's usage), the agent list (failed and waiting first), and a
detail panel (activity, diff, prompt, actions) or, with nothing selected, an
overview. It is a thin client of the Palot service (``palot.client``) and updates live from the service's
event stream on the kernel's event loop. :data:`ACTION_CONTROLS` names the dashboard method that runs each
action of ``palot.api.ACTIONS``.
"""

from .controls import ACTION_CONTROLS
from .dashboard import Dashboard

__all__ = ["ACTION_CONTROLS", "Dashboard"]
