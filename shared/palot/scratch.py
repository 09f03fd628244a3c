"""Scratch directories for async code: made and removed in a thread, never on the event loop.

Removing even a small directory can stall for a second on a busy disk (seen in the suite: 1.2 s for a
private git index), and a bundle's directory can hold tens of megabytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path


@contextlib.asynccontextmanager
async def scratch_dir(prefix: str) -> AsyncIterator[Path]:
    """A new private directory under the temporary folder, removed with everything in it afterwards."""
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)
