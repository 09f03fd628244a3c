"""Test scaffolding: ``palot serve`` that SIGKILLs itself right after a move's step did its work.

``python tests/crash_service.py STEP [palot serve options]``: when a move journals STEP as done, the process
is killed first, so the store says the step started and never finished — as after a crash at the worst
moment. Palot itself carries no such hook.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from palot.service.main import main
from palot.store import Store

STEP = sys.argv.pop(1)
_journal = Store.journal


def _journal_or_crash(self: Store, migration_id: str, step: str, phase: str, **detail: Any) -> None:
    if step == STEP and phase == "done":
        os.kill(os.getpid(), signal.SIGKILL)
    _journal(self, migration_id, step, phase, **detail)


Store.journal = _journal_or_crash  # type: ignore[method-assign]
sys.exit(main())
