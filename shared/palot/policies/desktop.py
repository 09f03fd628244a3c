"""Desktop notifications: ``org.freedesktop.Notifications.Notify`` on the D-Bus session bus.

Talks D-Bus with jeepney (pure Python, no system libraries). Without a session bus or a notification
server (a headless machine, a container) it says so once in the log and otherwise does nothing.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
from typing import Any

from jeepney import DBusAddress, new_method_call
from jeepney.io.asyncio import open_dbus_router
from jeepney.wrappers import DBusErrorResponse, unwrap_msg

from .. import api
from .settings import SettingsFile

log = logging.getLogger(__name__)

CALL_TIMEOUT = 5.0  # seconds for connecting and the Notify call together: a stuck bus must not pile up tasks

NOTIFICATIONS = DBusAddress("/org/freedesktop/Notifications", bus_name="org.freedesktop.Notifications",
                            interface="org.freedesktop.Notifications")

# D-Bus errors that mean "nobody shows notifications here", not "something broke"
_NO_SERVER = {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"}

URGENCY = {"needs_you": 2, "done": 1}  # critical, normal (the spec's 0 is low)


def notify_args(note: api.Notification, sound: bool) -> tuple[Any, ...]:
    """The Notify call's arguments (signature ``susssasa{sv}i``) for ``note``."""
    hints: dict[str, tuple[str, Any]] = {"urgency": ("y", URGENCY.get(note.kind, 1))}
    if not sound:
        hints["suppress-sound"] = ("b", True)
    # servers may render the body as markup (the spec's "body-markup"): escape so text stays text
    body = html.escape(note.body, quote=False)
    return ("Palot", 0, "", note.title, body, [], hints, -1)


class DesktopSink:
    """Sends notifications to the desktop's notification server, when the settings turn it on."""

    name = "desktop"

    def __init__(self, settings: SettingsFile) -> None:
        self.settings = settings
        self._said_unavailable = False  # the missing bus or server is logged once, not per notification

    def wanted(self, note: api.Notification) -> bool:
        desktop = self.settings.current.notifications.desktop
        return desktop.enabled and note.kind in desktop.kinds

    async def deliver(self, note: api.Notification) -> None:
        address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if not address:
            self._unavailable("DBUS_SESSION_BUS_ADDRESS is not set")
            return
        sound = self.settings.current.notifications.desktop.sound
        message = new_method_call(NOTIFICATIONS, "Notify", "susssasa{sv}i", notify_args(note, sound))
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                async with open_dbus_router(address) as router:
                    unwrap_msg(await router.send_and_get_reply(message))
        except TimeoutError:  # before OSError, of which it is a subclass
            log.warning("desktop notification: no answer from the session bus within %.0f s", CALL_TIMEOUT)
            return
        except (OSError, EOFError, RuntimeError, ValueError) as e:
            # no socket, refused, closed during auth, or an address jeepney cannot use (tcp:, unparseable)
            self._unavailable(f"no session bus at {address} ({type(e).__name__}: {e})")
            return
        except DBusErrorResponse as e:
            if e.name in _NO_SERVER:
                self._unavailable("no notification server on the session bus")
            else:
                log.warning("desktop notification refused: %s", e)
            return
        except Exception as e:  # noqa: BLE001 - a sink never raises: the notification went to the stream
            log.warning("desktop notification failed: %s: %s", type(e).__name__, e)
            return
        self._said_unavailable = False  # a later outage is worth saying again

    def _unavailable(self, why: str) -> None:
        if not self._said_unavailable:
            log.info("desktop notifications are off for now: %s", why)
            self._said_unavailable = True
