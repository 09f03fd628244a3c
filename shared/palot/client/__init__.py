"""``palot.client``: the typed client every front end uses to talk to the Palot service.

>>> async with PalotClient() as palot:                       # doctest: +SKIP
...     agent = await palot.spawn("~/src/app", "add a greeting module")
...     agent = await palot.wait(agent.id)

The client finds the service of ``PALOT_HOME`` on its unix socket and starts it in the background when it
is not running (waiting until it is ready, with progress). A service of another Palot version is restarted
when it is idle; otherwise the client says what to do. Errors are the service's own
:class:`~palot.errors.PalotError` subclasses, with their message and fix.

Modules (see README.md): :mod:`.typed` (:class:`PalotClient`), :mod:`.connection` (reaching the service,
calling, events) and :mod:`.starting` (the background service process).
"""

from __future__ import annotations

from .. import __version__
from .connection import Progress, ServiceConnection
from .starting import START_TIMEOUT
from .typed import PalotClient

__all__ = ["START_TIMEOUT", "PalotClient", "Progress", "ServiceConnection", "__version__"]
