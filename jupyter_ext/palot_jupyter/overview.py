"""The right column when no agent is selected: counts, today's usage, the service, what needs attention,
recent work."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from .format import Overview, OverviewItem, overview_html, overview_item_html

_SECTIONS = (
    ("attention", "⚠ NEEDS ATTENTION", "Nothing needs you right now."),
    ("running", "IN PROGRESS", ""),
    ("recent", "RECENT COMPLETIONS", ""),
)


class _Item:
    def __init__(self, item: OverviewItem, on_view: Callable[[str], None]) -> None:
        self.html = w.HTML(overview_item_html(item))
        view = w.Button(description="View", tooltip=f"Open {item.title}", layout=w.Layout(width="60px"))
        view.on_click(lambda _b: on_view(item.agent_id))
        self.box = w.HBox([self.html, view])
        self.box.add_class("palot-item")

    def show(self, item: OverviewItem) -> None:
        text = overview_item_html(item)
        if self.html.value != text:
            self.html.value = text


class OverviewPanel:
    def __init__(self, on_view: Callable[[str], None]) -> None:
        self._on_view = on_view
        self.current: Overview | None = None
        self.service = w.HTML()  # the service, its OpenCode server, projects and models
        self.summary = w.HTML(overview_html(Overview(0, (), 0, 0.0)))
        self._items: dict[tuple[str, str], _Item] = {}
        self._heads: dict[str, w.HTML] = {}
        self._boxes: dict[str, w.VBox] = {}
        self._empty: dict[str, w.HTML] = {}
        children: list[w.Widget] = [self.summary, self.service]
        for key, heading, empty in _SECTIONS:
            self._heads[key] = w.HTML(f'<div class="palot-h">{heading}</div>')
            self._boxes[key] = w.VBox([])
            self._empty[key] = w.HTML(f'<div class="palot-muted">{empty}</div>')
            children += [self._heads[key], self._boxes[key]]
        self.widget = w.VBox(children)

    def show(self, ov: Overview) -> None:
        """Show ``ov``, updating item texts in place and creating widgets only for new items."""
        if ov == self.current:
            return
        self.current = ov
        text = overview_html(ov)
        if self.summary.value != text:
            self.summary.value = text
        wanted: set[tuple[str, str]] = set()
        for key, _heading, when_empty in _SECTIONS:
            items: tuple[OverviewItem, ...] = getattr(ov, key)
            keys = [(key, i.agent_id) for i in items]
            wanted.update(keys)
            for k, item in zip(keys, items, strict=True):
                if k in self._items:
                    self._items[k].show(item)
                else:
                    self._items[k] = _Item(item, self._on_view)
            box = self._boxes[key]
            children = tuple(self._items[k].box for k in keys) or ((self._empty[key],) if when_empty else ())
            if box.children != children:
                box.children = children
            display = None if children else "none"
            if self._heads[key].layout.display != display:
                self._heads[key].layout.display = display
        for k in set(self._items) - wanted:
            gone = self._items.pop(k)
            gone.box.close()
