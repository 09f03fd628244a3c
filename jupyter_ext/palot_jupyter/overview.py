"""The right column when no agent is selected: counts, today's spend, the service, the permission requests
waiting for you (each with its answers), what needs attention, recent work, the settings."""

from __future__ import annotations

import time
from collections.abc import Callable

import ipywidgets as w
from palot.api import InboxItem

from .bulk_form import BulkForm
from .format import Overview, OverviewItem, esc, inbox_item_html, overview_html, overview_item_html

#: The answers each inbox item offers: button label, reply, style.
INBOX_REPLIES = (("Allow once", "once", "success"), ("Always", "always", ""), ("Reject", "reject", "danger"))

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


class _InboxItem:
    """One pending request with its three answers."""

    def __init__(self, item: InboxItem, on_reply: Callable[[str, str], None]) -> None:
        self.html = w.HTML(inbox_item_html(item))
        self.buttons = []
        for text, reply, style in INBOX_REPLIES:
            button = w.Button(description=text, button_style=style, tooltip=f"{text}: {item.permission_id}")
            button.on_click(lambda _b, r=reply: on_reply(item.permission_id, r))
            self.buttons.append(button)
        self.box = w.HBox([self.html, *self.buttons])
        self.box.add_class("palot-inbox-item")

    def show(self, item: InboxItem, now: float) -> None:
        text = inbox_item_html(item, now)
        if self.html.value != text:
            self.html.value = text


class OverviewPanel:
    def __init__(self, on_view: Callable[[str], None],
                 on_reply: Callable[[str, str], None] | None = None,
                 on_housekeeping: Callable[[str], None] | None = None) -> None:
        self._on_view = on_view
        self._on_reply = on_reply or (lambda _id, _reply: None)
        self.current: Overview | None = None
        self.service = w.HTML()  # the service, its OpenCode server, projects and models
        self.summary = w.HTML(overview_html(Overview(0, (), 0, 0.0)))
        self._items: dict[tuple[str, str], _Item] = {}
        self._heads: dict[str, w.HTML] = {}
        self._boxes: dict[str, w.VBox] = {}
        self._empty: dict[str, w.HTML] = {}
        # The inbox: every pending permission request of every agent, oldest first, answered here.
        self.inbox: list[InboxItem] = []
        self._inbox_items: dict[str, _InboxItem] = {}
        self.inbox_head = w.HTML('<div class="palot-h">⏳ WAITING ON YOU</div>', layout=w.Layout(display="none"))
        self.inbox_box = w.VBox([])
        self.inbox_message = w.HTML()
        self.inbox_message.add_class("palot-message")
        self.settings = w.HTML()  # the settings in use (folded), and a mistake in the file
        # Housekeeping: disk use, and what no agent owns (looked at, then the safe part removed).
        on_house = on_housekeeping or (lambda _what: None)
        self.housekeeping_buttons = []
        for text, what, tip in (("Disk use", "du", "disk used per agent, project and environment"),
                                ("Find orphans", "gc", "what no agent owns, with sizes (changes nothing)"),
                                ("Remove safe orphans", "gc_yes", "remove the orphans that hold no work")):
            button = w.Button(description=text, tooltip=tip)
            button.on_click(lambda _b, wh=what: on_house(wh))
            self.housekeeping_buttons.append(button)
        self.housekeeping = w.HTML()
        children: list[w.Widget] = [self.summary, self.service, self.inbox_head, self.inbox_box, self.inbox_message]
        for key, heading, empty in _SECTIONS:
            self._heads[key] = w.HTML(f'<div class="palot-h">{heading}</div>')
            self._boxes[key] = w.VBox([])
            self._empty[key] = w.HTML(f'<div class="palot-muted">{empty}</div>')
            children += [self._heads[key], self._boxes[key]]
        self.bulk = BulkForm()  # archive, abort or destroy many agents: a plan first, then confirm
        self.widget = w.VBox([*children, self.bulk.widget, w.HBox(self.housekeeping_buttons), self.housekeeping,
                              self.settings])

    def show_inbox(self, items: list[InboxItem], now: float | None = None) -> None:
        """The pending requests, oldest first, each with Allow once / Always / Reject."""
        now = now or time.time()
        self.inbox = sorted(items, key=lambda i: i.asked_at)
        for item in self.inbox:
            if item.permission_id in self._inbox_items:
                self._inbox_items[item.permission_id].show(item, now)
            else:
                self._inbox_items[item.permission_id] = _InboxItem(item, self._on_reply)
        for gone in set(self._inbox_items) - {i.permission_id for i in self.inbox}:
            self._inbox_items.pop(gone).box.close()
        children = tuple(self._inbox_items[i.permission_id].box for i in self.inbox)
        if self.inbox_box.children != children:
            self.inbox_box.children = children
        display = None if children else "none"
        if self.inbox_head.layout.display != display:
            self.inbox_head.layout.display = display

    def say(self, text: str, *, error: bool = False) -> None:
        """The outcome of an answer given in the inbox."""
        cls = "palot-error" if error else "palot-ok"
        self.inbox_message.value = f'<div class="{cls}">{esc(text)}</div>' if text else ""

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
