"""Bulk actions: archive, abort or destroy every agent a filter selects, a dry run first.

:func:`select` is the filter (pure over the agents' views); :func:`run_bulk` plans each selected agent's
outcome ("would …", or "skipped" and why) and, when it is not a dry run, carries the plan out one agent at a
time under that agent's lock: one agent's error is its own line and the others go on. Destroy keeps its
guard: an agent with work neither applied nor merged is skipped unless ``force`` is given, and the plan
says so before anything happens.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import api
from ..errors import PalotError, UnmergedWork
from ..install import Progress

if TYPE_CHECKING:
    from .run import Service

Status = api.AgentStatus
_ABORTABLE = (Status.PROVISIONING, Status.RUNNING, Status.WAITING)


def select(agents: list[api.Agent], req: api.BulkRequest, now: float) -> list[api.Agent]:
    """The agents of ``agents`` the request's age, title and id filters keep (status, project and environment
    are the list's), oldest change first."""
    age = api.age_seconds(req.older_than) if req.older_than else None
    words = req.title.casefold() if req.title else None
    ids = set(req.agents) if req.agents else None
    kept = [a for a in agents if not a.read_only
            and (age is None or now - a.updated_at >= age)
            and (words is None or words in a.title.casefold())
            and (ids is None or a.id in ids)]
    return sorted(kept, key=lambda a: a.updated_at)


def _item(agent: api.Agent, outcome: str, message: str) -> api.BulkItem:
    return api.BulkItem(agent_id=agent.id, title=agent.title, status=agent.status, project_name=agent.project_name,
                        environment=agent.environment.type, branch=agent.branch, updated_at=agent.updated_at,
                        outcome=outcome, message=message)  # type: ignore[arg-type]


async def _plan(svc: "Service", op: str, agent: api.Agent, force: bool) -> api.BulkItem:
    """What ``op`` would do to ``agent``: "would …", or "skipped" with the reason."""
    if agent.status == Status.MIGRATING:
        return _item(agent, "skipped", "it is moving to another environment; try again when the move is done")
    if op == "archive":
        if agent.status == Status.ARCHIVED:
            return _item(agent, "skipped", "already archived")
        stop = "stop its turn and " if agent.status in _ABORTABLE else ""
        kept = f" (its work stays on branch {agent.branch})" if agent.branch else ""
        return _item(agent, "would", f"would {stop}archive it{kept}")
    if op == "abort":
        if agent.status not in _ABORTABLE:
            return _item(agent, "skipped", f"not running ({agent.status.value}): nothing to stop")
        return _item(agent, "would", "would stop its turn (it is then paused, its work kept)")
    lost = await svc.palot.agents.unmerged_work(agent.id)
    if lost is None:
        return _item(agent, "would", "would destroy it with its environment and branch (no unmerged work)")
    if not force:
        return _item(agent, "skipped", f"{lost}; archive it to keep them, or destroy with force")
    return _item(agent, "would", f"would destroy it and LOSE its work: {lost}")


async def _carry_out(svc: "Service", op: str, item: api.BulkItem, force: bool) -> api.BulkItem:
    agents = svc.palot.agents
    try:
        if op == "abort":  # as the abort action: stopping a turn needs no lock
            await agents.abort(item.agent_id)
            return item.model_copy(update={"outcome": "done", "message": "stopped (paused, its work kept)"})
        async with svc.agent_lock(item.agent_id, f"bulk {op}") as agent_id:
            if op == "archive":
                agent = await agents.archive(agent_id)
                kept = f"; its work is on branch {agent.branch}" if agent.branch else ""
                return item.model_copy(update={"outcome": "done", "message": f"archived{kept}"})
            await agents.destroy(agent_id, force=force)
            return item.model_copy(update={"outcome": "done", "message": "destroyed with its environment and branch"})
    except UnmergedWork as e:  # its work changed since the plan: still never lost
        return item.model_copy(update={"outcome": "skipped", "message": f"{e.message}; {e.fix}"})
    except PalotError as e:
        return item.model_copy(update={"outcome": "failed",
                                       "message": e.message + (f" ({e.fix})" if e.fix else "")})


async def run_bulk(svc: "Service", req: api.BulkRequest, progress: Progress) -> api.BulkResult:
    """The plan of ``req`` for every selected agent, carried out unless it is a dry run."""
    statuses = [s.value for s in req.status] if req.status else None
    archived = bool(req.status and Status.ARCHIVED in req.status)
    listed = svc.palot.agents.list(project=req.project, status=statuses, environment=req.environment,
                                   include_archived=archived, include_external=False)
    plan = [await _plan(svc, req.operation, a, req.force) for a in select(listed, req, time.time())]
    if req.dry_run:
        return api.BulkResult(operation=req.operation, dry_run=True, items=plan)
    items: list[api.BulkItem] = []
    for item in plan:
        if item.outcome == "would":
            progress(f"{req.operation}: {item.agent_id} {item.title}")
            item = await _carry_out(svc, req.operation, item, req.force)
        items.append(item)
    done = [i.agent_id for i in items if i.outcome == "done"]
    svc.palot.store.audit("bulk", operation=req.operation, agents=done, force=req.force,
                          skipped=[i.agent_id for i in items if i.outcome == "skipped"],
                          failed=[i.agent_id for i in items if i.outcome == "failed"])
    return api.BulkResult(operation=req.operation, dry_run=False, items=items)
