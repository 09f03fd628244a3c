"""The overview shown while no agent is selected, and the sidebar's "today": counts, spend, what needs a person,
what runs and what finished lately (pure)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from palot.api import Agent, AgentStatus, Spend

from .badges import LIVE, STATUS_COLOR, ago, cost, elapsed, esc, note, status_badge, status_icon, tokens
from .listing import sort_key

ATTENTION = (AgentStatus.FAILED, AgentStatus.WAITING)


@dataclass(frozen=True)
class OverviewItem:
    agent_id: str
    title: str
    status: AgentStatus
    line: str


@dataclass(frozen=True)
class Overview:
    total: int
    counts: tuple[tuple[AgentStatus, int], ...]
    tokens_today: int
    cost_today: float
    attention: tuple[OverviewItem, ...] = ()
    recent: tuple[OverviewItem, ...] = ()
    running: tuple[OverviewItem, ...] = field(default=())
    spend: Spend | None = None  # today's spend as the service counts it (else the agents' usage is the estimate)
    inbox: int = 0  # permission requests waiting for a person


def start_of_day(now: float | None = None) -> float:
    t = time.localtime(now or time.time())
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def overview(agents: list[Agent], now: float | None = None, *, recent: int = 3) -> Overview:
    """Counts by status, usage of the agents active today, what needs attention, recent completions.

    "Today" counts the whole usage of every agent that changed since local midnight
    (the core keeps usage per agent, not per day).
    """
    now = now or time.time()
    current = [a for a in agents if a.status != AgentStatus.ARCHIVED]
    by_status = Counter(a.status for a in current)
    counts = tuple((st, by_status[st]) for st in AgentStatus if by_status[st])
    midnight = start_of_day(now)
    today = [a for a in agents if a.updated_at >= midnight]
    attention = tuple(
        OverviewItem(a.id, a.title, a.status, f"{a.status.value} {ago(a.updated_at, now)}: {note(a) or 'see details'}")
        for a in sorted(current, key=sort_key) if a.status in ATTENTION
    )
    running = tuple(
        OverviewItem(a.id, a.title, a.status, f"{a.status.value} for {elapsed(a, now)}")
        for a in sorted(current, key=sort_key) if a.status in LIVE and a.status not in ATTENTION
    )
    done = sorted((a for a in current if a.status == AgentStatus.COMPLETED), key=lambda a: -a.updated_at)
    recent_items = tuple(
        OverviewItem(a.id, a.title, a.status,
                     f"completed {ago(a.updated_at, now)} · {tokens(a.tokens)} tokens · {cost(a.cost)}")
        for a in done[:recent]
    )
    return Overview(
        total=len(current), counts=counts,
        tokens_today=sum(a.tokens for a in today), cost_today=sum(a.cost for a in today),
        attention=attention, recent=recent_items, running=running,
    )


def _today(ov: Overview) -> tuple[str, str, bool]:
    """Today's cost and tokens (with the day's budget, when set), and whether a budget is reached."""
    spend = ov.spend
    if spend is None:
        return cost(ov.cost_today), tokens(ov.tokens_today), False
    usd = cost(spend.usd) + (f" of {cost(spend.budget_usd)}" if spend.budget_usd is not None else "")
    toks = tokens(spend.tokens) + (f" of {tokens(spend.budget_tokens)}" if spend.budget_tokens is not None else "")
    over = ((spend.budget_usd is not None and spend.usd >= spend.budget_usd)
            or (spend.budget_tokens is not None and spend.tokens >= spend.budget_tokens))
    return usd, toks, over


def inbox_count_html(count: int) -> str:
    """``⏳ 3 permission requests wait for you`` (nothing when none does)."""
    if not count:
        return ""
    noun = "permission request waits" if count == 1 else "permission requests wait"
    return f'<div class="palot-inbox-count">⏳ <b>{count}</b> {noun} for you</div>'


def overview_html(ov: Overview) -> str:
    counts = "  ".join(
        f'<span style="color:{STATUS_COLOR[st]}">{status_icon(st)} {st.value}: <b>{n}</b></span>'
        for st, n in ov.counts) or "no agents yet: spawn one with <b>+ Agent</b>"
    noun = "agent" if ov.total == 1 else "agents"
    usd, toks, over = _today(ov)
    return (
        f'<div class="palot-h">OVERVIEW <span class="palot-muted">{ov.total} {noun}</span></div>'
        f'<div class="palot-counts">{counts}</div>'
        f'<div class="palot-today{" palot-over" if over else ""}">Today: <b>{usd}</b> · <b>{toks}</b> tokens</div>'
        f'{inbox_count_html(ov.inbox)}'
    )


def sidebar_today_html(ov: Overview) -> str:
    usd, toks, over = _today(ov)
    return (f'<div class="palot-side-h">TODAY</div><div class="palot-today-big{" palot-over" if over else ""}">'
            f'{usd}</div><div class="palot-muted">{toks} tokens</div>{inbox_count_html(ov.inbox)}')


def overview_item_html(item: OverviewItem) -> str:
    return (f'{status_badge(item.status)} <b>{esc(item.title)}</b>'
            f'<div class="palot-muted palot-item-line">{esc(item.line)}</div>')
