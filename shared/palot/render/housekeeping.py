"""Looking after the fleet in the terminal: a bulk action's plan and outcome, ``palot gc`` and ``palot du``. Text
is built from what users and agents wrote, never markup strings (see README.md)."""

from __future__ import annotations

from rich.text import Text

from .. import api

#: How each outcome of a bulk action looks: icon and colour.
BULK_STYLE = {"would": ("→", "cyan"), "done": ("✓", "green"), "skipped": ("·", "bright_black"), "failed": ("✕", "red")}


def bulk_line(item: api.BulkItem) -> Text:
    """One agent of a bulk action: ``→ ag_1 completed worktree web “title” — would archive it …``."""
    icon, colour = BULK_STYLE[item.outcome]
    return Text.assemble((f"{icon} ", colour), (item.agent_id, "bold"),
                         f"  {item.status.value:<10} {item.environment:<9} {item.project_name}  “{item.title}”"
                         f"  (changed {api.elapsed(item.updated_at)} ago)\n    ", (item.message, colour))


def bulk_summary(result: api.BulkResult) -> Text:
    """What a bulk action did (or would do), counted."""
    if not result.items:
        return Text("no agent matches these filters: nothing to do")
    counts = [f"{result.count(o)} {word}" for o, word in (
        ("would", f"to {result.operation}"), ("done", "done"), ("skipped", "skipped"), ("failed", "failed"))
        if result.count(o)]
    return Text(f"{len(result.items)} agent{'s' if len(result.items) != 1 else ''} selected: " + ", ".join(counts))


def gc_text(report: api.GcReport) -> Text:
    """``palot gc``: one block per orphan (kind, name, size, why; the work it holds and the command that keeps
    it), then what was done. Names and commands are never cut: they are what you copy."""
    out = Text()
    if not report.orphans:
        out.append("Nothing is orphaned: every worktree, palot/* branch, container and file of Palot has an agent.\n")
    for o in report.orphans:
        mark = ("removed", "green") if o.removed else (("failed", "red") if o.error else
                                                       (("safe", "blue") if o.safe else ("holds work", "yellow")))
        out.append_text(Text.assemble((o.kind, "bold"), f"  {o.name}  ", (api.human_bytes(o.size), "cyan"), "  ",
                                      mark, "\n"))
        out.append_text(Text.assemble("  ", (o.why, "bright_black"), "\n"))
        if o.project and o.kind in ("branch", "worktree"):
            out.append_text(Text.assemble("  in ", o.project, "\n"))
        if o.work:
            out.append_text(Text.assemble("  ", ("work: ", "yellow"), o.work, "\n"))
        if o.keep and not o.removed:
            out.append_text(Text.assemble("  keep it: ", (o.keep, "bold"), "\n"))
        if o.error:
            out.append_text(Text.assemble("  ", ("could not remove: ", "red"), o.error, "\n"))
    total = sum(o.size or 0 for o in report.orphans)
    safe = [o for o in report.orphans if o.safe and not o.removed]
    unsafe = [o for o in report.orphans if not o.safe and not o.removed]
    if report.removing:
        out.append(f"removed {report.removed} of {len(report.orphans)} ({api.human_bytes(report.freed)})")
        if unsafe:
            out.append(f"; kept {len(unsafe)} that hold work: keep it with the commands above, "
                       "or remove them with `palot gc --yes --force` (their work is lost)")
        out.append("\n")
    elif report.orphans:
        out.append(f"{len(report.orphans)} orphan(s), {api.human_bytes(total)}; "
                   f"`palot gc --yes` removes the {len(safe)} safe one(s)"
                   + (f", not the {len(unsafe)} that hold work" if unsafe else "") + "\n")
    for why in report.unchecked:
        out.append_text(Text.assemble(("not checked: ", "yellow"), why, "\n"))
    return out


def du_text(use: api.DiskUse, agents: dict[str, str] | None = None) -> Text:
    """``palot du``: per agent (with its title when known), per project, per environment type, then each item."""
    out = Text()
    for heading, sums in (("agent", use.by_agent), ("project", use.by_project),
                          ("environment", use.by_environment)):
        out.append_text(Text(f"by {heading}\n", "bold"))
        for key, size in sorted(sums.items(), key=lambda kv: -kv[1]):
            title = f" “{agents[key]}”" if agents and key in agents else ""
            out.append_text(Text.assemble(f"  {api.human_bytes(size):>9}  ", key, title, "\n"))
        if not sums:
            out.append("  (nothing)\n")
    out.append_text(Text("items\n", "bold"))
    for i in use.items:
        out.append_text(Text.assemble(f"  {api.human_bytes(i.bytes):>9}  ", (i.kind, "cyan"), f"  {i.name}",
                                      (f"  {i.agent_id}" if i.agent_id else ""), "\n"))
    out.append_text(Text.assemble(("total ", "bold"), api.human_bytes(use.total), "\n"))
    for why in use.unchecked:
        out.append_text(Text.assemble(("not measured: ", "yellow"), why, "\n"))
    return out
