"""The service in the terminal: ``palot service status``, today's spend, the overview line under ``palot agents
list``, and an agent's budget. Text is built from what users and agents wrote, never markup strings (see
README.md)."""

from __future__ import annotations

from rich.text import Text

from .. import api
from ..api import Agent, elapsed


def service_status(status: api.ServiceStatus, socket: str) -> Text:
    """``palot service status``: the service, its OpenCode server and who uses it; one line each, never
    wrapped (print it with ``soft_wrap=True``), so a path can be copied whole."""
    lines = Text()
    opencode = (f"{status.opencode_url} (pid {status.opencode_pid}), "
                f"{'connected' if status.opencode_connected else 'not connected'}, "
                f"{status.opencode_restarts} restart(s)" if status.opencode_url else "not started")
    service = (f"running, Palot {status.palot_version} (API {status.api_version}), pid {status.pid}, "
               f"up {elapsed(status.started_at)}")
    rows: list[tuple[str, str | Text]] = [
        ("service", service),
        ("home", status.home), ("socket", socket), ("tcp", status.tcp or "off"), ("opencode", opencode),
        ("agents", str(status.agents)), ("clients", f"{status.clients} watching events"),
    ]
    if status.spend is not None:
        rows.append(("spend", f"{spend_text(status.spend)} ({status.spend.day})"))
    rows.append(("inbox", f"{status.inbox} waiting on you (palot inbox)" if status.inbox else "nothing waiting"))
    if status.warm_containers:
        rows.append(("warm", f"{status.warm_containers} container(s) started ahead of need"))
    if status.settings_error:
        rows.append(("settings", Text(status.settings_error, "red")))
    for name, value in rows:
        if lines:
            lines.append("\n")
        lines.append(f"{name:<10}", style="bold")
        lines.append(value)
    return lines


def _usd(value: float) -> str:
    return f"${value:.2f}"


def spend_text(spend: api.Spend, *, tokens: bool = True) -> str:
    """``$0.42 of $20.00, 120,000 of 1,000,000 tokens``: today's spend, against the day's budget when set
    (the tokens without a token budget only with ``tokens``)."""
    text = _usd(spend.usd) + (f" of {_usd(spend.budget_usd)}" if spend.budget_usd is not None else "")
    if spend.budget_tokens is not None:
        text += f", {spend.tokens:,} of {spend.budget_tokens:,} tokens"
    elif spend.tokens and tokens:
        text += f", {spend.tokens:,} tokens"
    return text


def overview_line(status: api.ServiceStatus) -> Text | None:
    """The line under ``palot agents list``: ``today: $0.42 of $20.00 · 3 waiting on you (palot inbox)``, only
    the parts that apply (None when none does)."""
    parts: list[Text] = []
    spend = status.spend
    if spend is not None and (spend.usd or spend.tokens or spend.budget_usd is not None
                              or spend.budget_tokens is not None):
        over = ((spend.budget_usd is not None and spend.usd >= spend.budget_usd)
                or (spend.budget_tokens is not None and spend.tokens >= spend.budget_tokens))
        parts.append(Text(f"today: {spend_text(spend, tokens=False)}", "red" if over else ""))
    if status.inbox:
        parts.append(Text(f"{status.inbox} waiting on you (palot inbox)", "yellow"))
    if status.settings_error:
        parts.append(Text("settings.toml has a mistake (palot settings)", "red"))
    return Text(" · ").join(parts) if parts else None


def budget_text(agent: Agent) -> Text | None:
    """``budget: $0.12 of $0.50 · 12,000 of 500,000 tokens`` for an agent with a budget, else None."""
    if agent.budget_usd is None and agent.budget_tokens is None:
        return None
    parts = []
    if agent.budget_usd is not None:
        cloud = f" (incl. ${agent.environment_cost:.4f} cloud)" if agent.environment_cost else ""
        parts.append(f"${agent.total_cost:.2f} of {_usd(agent.budget_usd)}{cloud}")
    if agent.budget_tokens is not None:
        parts.append(f"{agent.tokens:,} of {agent.budget_tokens:,} tokens")
    return Text.assemble(("budget:", "bold"), " " + " · ".join(parts))
