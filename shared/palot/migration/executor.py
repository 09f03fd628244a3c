"""The journaled loop that runs a move's table (:data:`.steps.TABLE`): forward to the commit point, finishing
after it, or rolling back before it. Every step is journaled in the store before and after it runs, so a
restart knows what to undo or finish (:func:`.plan.decide_recovery`)."""

from __future__ import annotations

import asyncio
import shutil

from .plan import UNDOABLE, steps_left
from .steps import TABLE, Move, Step


async def run_step(move: Move, step: Step) -> None:
    move.step = step.name
    move.progress(step.line(move.manifest.source.type, move.manifest.target.type))
    move.store.journal(move.mid, step.name, "started")
    await step.do(move)
    move.store.journal(move.mid, step.name, "done")


async def forward(move: Move, resume: bool | None) -> None:
    """Every step up to the commit point, then :func:`finish`."""
    move.resume_wanted = resume
    for step in TABLE:
        if step.name not in UNDOABLE:
            break
        await run_step(move, step)
    await finish(move, resume=resume)


async def finish(move: Move, *, resume: bool | None) -> None:
    """The steps after the commit point not yet journaled done; then the move is completed."""
    m = move.manifest
    move.resume_wanted = resume
    left = steps_left({(j.step, j.phase) for j in move.store.migration_journal(move.mid)})
    for step in TABLE:
        if step.name in left:
            await run_step(move, step)
    move.store.update_migration(move.mid, state="completed")
    move.store.audit("migration_completed", agent_id=m.agent_id, project_id=move.project.id,
                     migration=move.mid, source=m.source.type, target=m.target.type,
                     messages=m.session.message_count, resumed=move.resumed)
    await asyncio.to_thread(shutil.rmtree, move.dir, ignore_errors=True)


async def roll_back(move: Move, reason: str) -> None:
    """Undo a move that did not reach its commit point: each step's undo, last step first (all of them: the
    target may have been started in the background before its step), so the target is discarded and the
    source is as it was. A failed undo is journaled and raised as it is; the move stays ``running``, so the
    next start tries the rollback again (every undo tolerates what was already undone)."""
    mid = move.mid
    mig = move.store.get_migration(mid)
    move.store.journal(mid, "rollback", "started", reason=reason[:500])
    for step in reversed(TABLE):
        if step.name in UNDOABLE and step.undo is not None:
            try:
                await step.undo(move)
            except Exception as e:
                move.store.journal(mid, "rollback", "failed", step=step.name, error=str(e)[:500] or type(e).__name__)
                raise
    move.store.update_migration(mid, state="rolled_back", error=reason[:1000])
    move.store.journal(mid, "rollback", "done")
    move.store.audit("migration_rolled_back", agent_id=move.manifest.agent_id, project_id=move.project.id,
                     migration=mid, step=mig.step, reason=reason[:500])
    await asyncio.to_thread(shutil.rmtree, move.dir, ignore_errors=True)
