"""The left column: "+ Agent", filters by project, status and environment (with counts), today's usage."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from .format import ALL, Facets, Filters, Overview, sidebar_today_html


class Sidebar:
    def __init__(self, on_filters: Callable[[Filters], None], on_new: Callable[[], None]) -> None:
        self._on_filters = on_filters
        self._quiet = False
        self.new_button = w.Button(description="+ Agent", button_style="primary", tooltip="Spawn a new agent")
        self.new_button.on_click(lambda _b: on_new())
        self.project = w.Select(options=[("All projects (0)", ALL)], rows=2)
        self.status = w.Select(options=[("All but archived (0)", ALL)], rows=2)
        self.environment = w.Select(options=[("All environments (0)", ALL)], rows=2)
        for select in (self.project, self.status, self.environment):
            select.observe(self._changed, names="value")
        self.today = w.HTML(sidebar_today_html(Overview(0, (), 0, 0.0)))

        def heading(text: str) -> w.HTML:
            return w.HTML(f'<div class="palot-side-h">{text}</div>')

        self.widget = w.VBox([
            self.new_button, heading("PROJECTS"), self.project, heading("STATUS"), self.status,
            heading("ENVIRONMENTS"), self.environment, self.today,
        ])
        self.widget.add_class("palot-sidebar")

    @property
    def filters(self) -> Filters:
        return Filters(project=self.project.value or None, status=self.status.value or None,
                       environment=self.environment.value or None)

    def show(self, facets: Facets, overview: Overview) -> None:
        """New counts; the chosen filters stay chosen (a new options list would reset them)."""
        self._quiet = True
        try:
            for select, options in ((self.project, facets.projects), (self.status, facets.statuses),
                                    (self.environment, facets.environments)):
                if tuple(select.options) != options:
                    value = select.value
                    select.options = options
                    select.value = value if value in {v for _, v in options} else ALL
                    rows = min(max(len(options), 2), 9)
                    if select.rows != rows:
                        select.rows = rows
        finally:
            self._quiet = False
        today = sidebar_today_html(overview)
        if self.today.value != today:
            self.today.value = today

    def _changed(self, _change: object) -> None:
        if not self._quiet:
            self._on_filters(self.filters)
