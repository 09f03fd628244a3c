"""The agent list: one row per agent (status, title, environment, project, elapsed, tokens, cost).

A row is a handful of small widgets so that an update sends only the cells
whose text changed; the list reorders its rows only when the order changes.
Rows share their layout and style models (hundreds of rows, not thousands of models).
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w
from ipywidgets.widgets.widget_string import HTMLStyle
from palot.api import Agent

from .format import LIVE, ROW_CELLS, Filters, elapsed, row_cells, visible


class _Shared:
    """Layout and style models every row uses."""

    def __init__(self) -> None:
        self.layout = w.Layout()
        self.html_style = HTMLStyle()
        self.button_style = w.ButtonStyle()


class AgentRow:
    """One agent's row; ``update`` changes only the cells whose text changed."""

    def __init__(self, agent: Agent, shared: _Shared, on_select: Callable[[str], None], now: float) -> None:
        self.agent_id = agent.id
        self.status = agent.status
        self.environment = agent.environment.type
        self.values = row_cells(agent, now)
        self.cells: dict[str, w.HTML | w.Button] = {}
        for name in ROW_CELLS:
            cell: w.HTML | w.Button
            if name == "title":
                cell = w.Button(description=self.values[name], tooltip=_tooltip(agent), layout=shared.layout,
                                style=shared.button_style)
                cell.on_click(lambda _button: on_select(self.agent_id))
            else:
                cell = w.HTML(self.values[name], layout=shared.layout, style=shared.html_style)
            cell.add_class("palot-cell")
            cell.add_class(f"palot-c-{name}")
            self.cells[name] = cell
        self.box = w.HBox(list(self.cells.values()), layout=shared.layout)
        for cls in ("palot-row", f"palot-st-{agent.status.value}", f"palot-env-{agent.environment.type}"):
            self.box.add_class(cls)

    def update(self, agent: Agent, now: float) -> list[str]:
        """Show ``agent``; returns the names of the cells that changed."""
        values = row_cells(agent, now)
        changed = [name for name, text in values.items() if self.values.get(name) != text]
        for name in changed:
            self._set(name, values[name])
        if agent.status != self.status:
            self.box.remove_class(f"palot-st-{self.status.value}")
            self.box.add_class(f"palot-st-{agent.status.value}")
            self.status = agent.status
        if agent.environment.type != self.environment:  # the agent moved to another environment
            self.box.remove_class(f"palot-env-{self.environment}")
            self.box.add_class(f"palot-env-{agent.environment.type}")
            self.environment = agent.environment.type
        tip = _tooltip(agent)
        title = self.cells["title"]
        if title.tooltip != tip:
            title.tooltip = tip
        self.values = values
        return changed

    def tick(self, agent: Agent, now: float) -> bool:
        """Advance the elapsed time of a live agent."""
        if agent.status not in LIVE:
            return False
        text = elapsed(agent, now)
        if text == self.values["elapsed"]:
            return False
        self.values["elapsed"] = text
        self._set("elapsed", text)
        return True

    def _set(self, name: str, text: str) -> None:
        cell = self.cells[name]
        if isinstance(cell, w.Button):
            cell.description = text
        else:
            cell.value = text

    def selected(self, on: bool) -> None:
        (self.box.add_class if on else self.box.remove_class)("palot-selected")


def _tooltip(agent: Agent) -> str:
    return agent.prompt[:400] or agent.title


class AgentList:
    """The middle column: the rows, in the order the filters and statuses say.

    A row reads as two lines: status, title and elapsed time; then environment,
    project, tokens and cost.
    """

    def __init__(self, on_select: Callable[[str], None]) -> None:
        self._on_select = on_select
        self._shared = _Shared()
        self.rows: dict[str, AgentRow] = {}
        self.order: list[str] = []
        self._selected: str | None = None
        self.heading = w.HTML('<div class="palot-h">AGENTS</div>')
        self.empty = w.HTML('<div class="palot-empty">No agents yet. Spawn one with <b>+ Agent</b>.</div>')
        self.rows_box = w.VBox([self.empty])
        self.rows_box.add_class("palot-rows")
        self.widget = w.VBox([self.heading, self.rows_box])
        self.widget.add_class("palot-list")

    def upsert(self, agent: Agent, now: float) -> list[str]:
        """Add or update the agent's row; returns the cells that changed (all of them for a new row)."""
        row = self.rows.get(agent.id)
        if row is None:
            self.rows[agent.id] = AgentRow(agent, self._shared, self._on_select, now)
            return list(ROW_CELLS)
        return row.update(agent, now)

    def remove(self, agent_id: str) -> None:
        row = self.rows.pop(agent_id, None)
        if row is not None:
            row.box.close()
            for cell in row.cells.values():
                cell.close()

    def arrange(self, agents: dict[str, Agent], filters: Filters) -> bool:
        """Show the matching rows in display order; returns whether the list changed."""
        ids = [i for i in visible(agents, filters) if i in self.rows]
        heading = self._heading(len(ids), len(agents), filters)
        if self.heading.value != heading:
            self.heading.value = heading
        if ids == self.order:
            return False
        self.order = ids
        self.rows_box.children = tuple(self.rows[i].box for i in ids) if ids else (self.empty,)
        if not ids:
            self.empty.value = ('<div class="palot-empty">No agents match these filters.</div>' if agents else
                                '<div class="palot-empty">No agents yet. Spawn one with <b>+ Agent</b>.</div>')
        return True

    @staticmethod
    def _heading(shown: int, total: int, filters: Filters) -> str:
        filtered = filters != Filters()
        count = f"{shown} of {total}" if filtered else f"{shown}"
        return (f'<div class="palot-h">AGENTS <span class="palot-muted">{count} · failed and waiting first'
                "</span></div>")

    def select(self, agent_id: str | None) -> None:
        if self._selected in self.rows:
            self.rows[self._selected].selected(False)
        self._selected = agent_id
        if agent_id in self.rows:
            self.rows[agent_id].selected(True)
