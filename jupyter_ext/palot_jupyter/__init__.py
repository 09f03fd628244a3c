"""Palot's Jupyter dashboard: ``from palot_jupyter import Dashboard; Dashboard()``.

Three columns, as in Palot's design: filters (projects, statuses,
environments, today's usage), the agent list (failed and waiting first), and a
detail panel (activity, diff, prompt, actions) or, with nothing selected, an
overview. It updates live from Palot's event stream on the kernel's event loop.
"""

from .dashboard import Dashboard

__all__ = ["Dashboard"]
