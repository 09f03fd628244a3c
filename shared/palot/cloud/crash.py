"""What a cloud container that stopped unexpectedly lost, in one sentence for the agent's views.

The Worker (``images/cloudflare/src/crash.ts``) notices a container that stopped without being asked (killed,
crashed, out of memory, a host restart) and says in the environment's status when (``stopped_unexpectedly_at``,
``exit_code``) and what that lost against the newest save (``lost``): ``"since_save"`` (the environment changed
after the save), ``"nothing"`` (no change it saw after it), ``"unknown"`` or ``"everything"`` (there was no save).
The next start restores the newest save (``restored_from``). This module only words it; times are this machine's.
"""

from __future__ import annotations

import time
from typing import Any


def _clock(unix: float) -> str:
    return time.strftime("%H:%M", time.localtime(unix))


def notice(status: dict[str, Any]) -> str | None:
    """The sentence for a Worker status with an unexpected stop (None without one).

    Until the environment starts again it says what its next start will bring back; once it runs again, what
    the restore came from and what was lost with it."""
    stopped = status.get("stopped_unexpectedly_at")
    if not stopped:
        return None
    code = status.get("exit_code")
    head = f"its cloud container stopped unexpectedly at {_clock(stopped)}" + (f" (exit {code})" if code else "")
    lost, again = status.get("lost"), status.get("status") == "running"
    saved = status.get("restored_from") if again else status.get("saved_at")
    if lost == "everything" or not saved:
        if again:
            return f"{head} and started again from the project's base commit (there was no save): its work there was lost"
        return (f"{head}; there is no save, so the next prompt starts it again from the project's base commit: "
                f"its work there is lost")
    at = _clock(saved)
    if again:
        said = {"nothing": f"nothing was lost (no change after {at} that the Worker saw)",
                "since_save": f"work done after {at} was lost"}.get(str(lost), f"work after {at} may have been lost")
        return f"{head} and was restored from the save at {at}: {said}"
    said = {"nothing": "no change after it was seen, so nothing is lost",
            "since_save": f"work done after {at} is lost"}.get(str(lost), f"work after {at} may be lost")
    return f"{head}; the next prompt starts it again from the save at {at}: {said}"
