"""Webhook notifications: a JSON POST to each Slack or Discord webhook in the settings that wants the kind.

Each hook is delivered in its own task and retried on connection errors, 5xx and 429 with a short backoff.
Webhook URLs carry their secret in the path, so logs name a hook by its place in the settings and its host.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import api, tls
from .settings import SettingsFile, Webhook

log = logging.getLogger(__name__)

BACKOFF = (0.5, 1.0, 2.0, 4.0)  # seconds before each retry; so at most five attempts
RETRY_AFTER_MAX = 30.0  # a longer Retry-After is capped: a notification later than that is stale
REQUEST_TIMEOUT = 10.0
DISCORD_LIMIT = 2000  # characters Discord accepts in "content"


def text(note: api.Notification) -> str:
    """The message: the title, the body, and what to do next, one per line."""
    lines = [note.title]
    if note.body:
        lines.append(note.body)
    if note.action:
        lines.append(f"Next: {note.action}")
    return "\n".join(lines)


def payload(note: api.Notification, fmt: str) -> dict[str, Any]:
    """The JSON body a webhook of format ``fmt`` expects."""
    message = text(note)
    if fmt == "discord":
        if len(message) > DISCORD_LIMIT:
            message = message[:DISCORD_LIMIT - 1] + "…"
        # agent text must not ping anyone (@everyone, roles, users)
        return {"content": message, "username": "Palot", "allowed_mentions": {"parse": []}}
    # Slack reads <…> as links and mentions (<!channel>) and & as an entity: escape those three only
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {"text": escaped}


def describe(index: int, hook: Webhook) -> str:
    """``webhook 1 (hooks.slack.com)``: how logs name a hook, without the secret in its URL."""
    return f"webhook {index + 1} ({urlsplit(hook.url).hostname or 'unknown host'})"


class WebhookSink:
    """Posts notifications to the webhooks in the settings whose ``kinds`` include the notification's."""

    name = "webhooks"

    def __init__(self, settings: SettingsFile) -> None:
        self.settings = settings

    def _hooks(self, note: api.Notification) -> list[tuple[int, Webhook]]:
        hooks = self.settings.current.notifications.webhooks
        return [(i, h) for i, h in enumerate(hooks) if note.kind in h.kinds]

    def wanted(self, note: api.Notification) -> bool:
        return bool(self._hooks(note))

    async def deliver(self, note: api.Notification) -> None:
        hooks = self._hooks(note)
        if not hooks:
            return
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, verify=tls.context()) as client:
            tasks = [asyncio.create_task(self._post(client, i, hook, note)) for i, hook in hooks]
            await asyncio.gather(*tasks, return_exceptions=True)  # _post never raises; this is belt and braces

    async def _post(self, client: httpx.AsyncClient, index: int, hook: Webhook, note: api.Notification) -> None:
        name = describe(index, hook)
        body = payload(note, hook.format)
        for attempt in range(len(BACKOFF) + 1):
            last = attempt == len(BACKOFF)
            wait = BACKOFF[min(attempt, len(BACKOFF) - 1)]
            try:
                response = await client.post(hook.url, json=body)
            except httpx.UnsupportedProtocol as e:  # retrying cannot help
                log.warning("%s: cannot post: %s", name, _safe(e, hook.url))
                return
            except httpx.TransportError as e:
                why = _safe(e, hook.url)
            except Exception as e:  # noqa: BLE001 - a sink never raises
                log.warning("%s: cannot post: %s", name, _safe(e, hook.url))
                return
            else:
                status = response.status_code
                if status < 300:
                    return
                if status != 429 and status < 500:
                    log.warning("%s: refused with HTTP %d; not retried", name, status)
                    return
                why = f"HTTP {status}"
                if status == 429:
                    wait = _retry_after(response) or wait
            if last:
                log.warning("%s: gave up after %d attempts (%s)", name, attempt + 1, why)
                return
            log.info("%s: %s; retrying in %.1f s", name, why, wait)
            await asyncio.sleep(wait)


def _retry_after(response: httpx.Response) -> float | None:
    """A 429's Retry-After in seconds (the date form is not worth parsing here), capped."""
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def _safe(error: Exception, url: str) -> str:
    """An error's description, or only its type when the text might quote the URL's secret part."""
    message = str(error)
    parts = urlsplit(url)
    secret = parts.path.strip("/") or parts.query
    if not message or url in message or (secret and secret in message):
        return type(error).__name__
    return f"{type(error).__name__}: {message}"
