"""The activity stream: structured lines (icon + verb + target + summary), newest at the bottom.

An anywidget, because following the newest line needs a little script: the
view stays pinned to the bottom while new lines arrive, stops following when
the reader scrolls up (or unticks "follow"), and expands a line on click;
failed lines start expanded. Only changed lines are redrawn.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

_ESM = r"""
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function line(item) {
  const row = el("div", `palot-act palot-act-${item.state} palot-kind-${item.kind}`);
  row.dataset.id = item.id;
  const head = el("div", "palot-act-head");
  head.append(el("span", "palot-act-time", item.time), el("span", "palot-act-icon", item.icon),
              el("span", "palot-act-verb", item.verb), el("span", "palot-act-target", item.target),
              el("span", "palot-act-summary", item.summary));
  if (item.state === "running" || item.state === "pending") head.append(el("span", "palot-act-spin", "…"));
  head.title = [item.verb, item.target, item.summary].filter(Boolean).join(" ");
  head.addEventListener("click", () => row.classList.toggle("palot-open"));
  row.append(head);
  if (item.state === "error") row.classList.add("palot-open");
  return row;
}

function render({ model, el: root }) {
  root.classList.add("palot-activity");
  const bar = el("div", "palot-act-bar");
  const count = el("span", "palot-act-count");
  const label = el("label", "palot-act-follow");
  const follow = el("input");
  follow.type = "checkbox";
  follow.checked = true;
  label.append(follow, document.createTextNode(" follow"));
  bar.append(count, label);
  const list = el("div", "palot-act-list");
  const empty = el("div", "palot-act-empty", "No activity yet.");
  root.append(bar, list);
  const shown = new Map();  // id -> [signature, element]

  function toBottom() { list.scrollTop = list.scrollHeight; }

  function draw() {
    const items = model.get("items") || [];
    const keep = new Set(items.map((i) => i.id));
    for (const [id, [, node]] of shown) {
      if (!keep.has(id)) { node.remove(); shown.delete(id); }
    }
    let previous = null;
    for (const item of items) {
      const signature = JSON.stringify(item);
      const known = shown.get(item.id);
      let node = known && known[1];
      if (!known || known[0] !== signature) {
        const fresh = line(item);
        if (node) {
          if (node.classList.contains("palot-open")) fresh.classList.add("palot-open");  // keep it expanded
          node.replaceWith(fresh);
        }
        node = fresh;
        shown.set(item.id, [signature, node]);
      }
      const want = previous ? previous.nextSibling : list.firstChild;
      if (want !== node) list.insertBefore(node, want);
      previous = node;
    }
    if (!items.length) list.append(empty); else empty.remove();
    count.textContent = items.length ? `${items.length} events` : "";
    if (follow.checked) toBottom();
  }

  list.addEventListener("scroll", () => {
    follow.checked = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  });
  follow.addEventListener("change", () => { if (follow.checked) toBottom(); });
  model.on("change:items", draw);
  draw();
  requestAnimationFrame(toBottom);
  return () => model.off("change:items", draw);
}

export default { render };
"""

_CSS = """
.palot-activity { display: flex; flex-direction: column; font-size: 12.5px; }
.palot-activity .palot-act-bar { display: flex; justify-content: space-between; color: var(--jp-ui-font-color2, #6e7781);
  font-size: 11px; padding: 0 2px 2px 2px; }
.palot-activity .palot-act-list { height: 260px; overflow-y: auto; border: 1px solid var(--jp-border-color2, #d0d7de);
  border-radius: 4px; padding: 2px 0; background: var(--jp-layout-color1, #fff); }
.palot-activity .palot-act-empty { color: var(--jp-ui-font-color2, #6e7781); padding: 8px; }
.palot-activity .palot-act-head { display: flex; gap: 6px; padding: 1px 6px; cursor: pointer; white-space: nowrap; }
.palot-activity .palot-act-head:hover { background: var(--jp-layout-color2, #f6f8fa); }
.palot-activity .palot-act-time { color: var(--jp-ui-font-color2, #6e7781); font-family: var(--jp-code-font-family, monospace); }
.palot-activity .palot-act-icon { width: 1.4em; text-align: center; }
.palot-activity .palot-act-target { font-weight: 600; overflow: hidden; text-overflow: ellipsis; }
.palot-activity .palot-act-summary { color: var(--jp-ui-font-color2, #6e7781); overflow: hidden; text-overflow: ellipsis; }
.palot-activity .palot-act-error .palot-act-summary { color: #cf222e; }
.palot-activity .palot-act-spin { color: #1a7f37; }
.palot-activity .palot-open .palot-act-head { white-space: normal; flex-wrap: wrap; }
"""


class ActivityStream(anywidget.AnyWidget):
    """Activity lines as dicts (``palot_jupyter.format.activity_entry``), oldest first."""

    _esm = _ESM
    _css = _CSS
    items = traitlets.List(traitlets.Dict()).tag(sync=True)

    def show(self, entries: list[dict[str, Any]]) -> bool:
        """Show ``entries``; returns whether anything changed (nothing is sent otherwise)."""
        if entries == self.items:
            return False
        self.items = entries
        return True
