"""The notifications and questions of the language server: the service's notifications said in the editor, and
questions to the person (``window/showMessageRequest``) asked in the background, whose buttons run commands.

``Questions`` is mixed into ``PalotLanguageServer``; it uses the server's ``show``, ``log``, ``live`` and
workspace.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from palot import api
from palot.api import Agent, PalotError
from palot.errors import InvalidInput

from . import actions as names
from .actions import (
    REPLY_CHOICES,
    ActionSpec,
    inbox_choices,
    inbox_question,
    notification_button,
    notification_text,
    template_choices,
    template_spawn,
    template_usage,
)
from .arguments import InvalidArguments, parse_arguments, quiet
from .changes import agent_label
from .commands import COMMANDS
from .commands_asking import inbox_lines

log = logging.getLogger(__name__)


class Questions:
    """What the editor is told of the service's notifications, and the questions it asks the person."""

    _asking: set[asyncio.Task[None]]  # questions to the person (showMessageRequest) open now

    def on_notification(self, note: api.Notification) -> None:
        """A notification of the service: "needs you" asks, with a button for the next step; "done" tells."""
        if self._said_by_status(note):
            return
        if note.kind == "needs_you":
            self.ask(self._needs_you(note))
        else:
            self.show(notification_text(note))

    def _said_by_status(self, note: api.Notification) -> bool:
        """A workspace agent's completion or failure: ``on_status`` has said it already."""
        agents = [self.live.agents.get(a) for a in note.agent_ids]
        return note.reason in ("completed", "failed") and bool(agents) and all(
            a is not None and self.in_workspace(a) for a in agents)

    async def _needs_you(self, note: api.Notification) -> None:
        text = notification_text(note)
        button = notification_button(note)
        if button is None:
            self.show(text + (f"\n→ {note.action}" if note.action else ""), lsp.MessageType.Warning)
            return
        picked = await self.question(text, [button.title], fallback=f"{text}\n→ {note.action}")
        if picked == button.title:
            await self.press(button)

    def ask(self, question: Any) -> None:
        """Ask the person in the background: a command's answer never waits for them."""
        task = asyncio.get_running_loop().create_task(question, name="palot-lsp-ask")
        self._asking.add(task)
        task.add_done_callback(self._asked)

    def _asked(self, task: asyncio.Task[None]) -> None:
        self._asking.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("a question to the person failed", exc_info=error)

    async def question(self, message: str, choices: list[str], *, fallback: str,
                       type: lsp.MessageType = lsp.MessageType.Warning) -> str | None:
        """``window/showMessageRequest`` with ``choices`` as buttons: the title picked, or None (dismissed).
        An editor that cannot ask gets ``fallback`` as a message."""
        try:
            picked = await self.window_show_message_request_async(lsp.ShowMessageRequestParams(
                type=type, message=message, actions=[lsp.MessageActionItem(title=c) for c in choices]))
        except JsonRpcException as e:
            self.log(f"could not ask ({e!r}); said it instead", lsp.MessageType.Log)
            self.show(fallback, type)
            return None
        return picked.title if picked is not None else None

    async def press(self, button: ActionSpec) -> None:
        """Run the command of a button the person pressed; its failure is said, with the fix."""
        command = COMMANDS[button.command]
        try:
            result = await command.run(self, parse_arguments(command, [button.arguments]), quiet)
        except (PalotError, InvalidArguments) as e:
            self.show(f"{button.title} failed: {e}", lsp.MessageType.Error)
            return
        if button.command == names.GET:
            agent = Agent.model_validate(result)
            more = agent.error or agent.pause_reason
            self.show(f"Agent {agent_label(agent)} is {agent.status.value}" + (f": {more}" if more else "") + ".")
        elif button.command == names.MOVES and result:
            last = result[-1]
            self.show(f"Its last move, to a {last['target_type']}: {last['state']}"
                      + (f" ({last['error']})" if last.get("error") else ""))

    def pick_inbox(self, items: list[api.InboxItem]) -> None:
        """Offer the oldest pending requests as buttons; answer the one picked (once, always or reject)."""
        self.ask(self._pick_inbox(items))

    async def _pick_inbox(self, items: list[api.InboxItem]) -> None:
        choices = inbox_choices(items)
        count = f"{len(items)} permission request{'s' if len(items) != 1 else ''} wait for you"
        shown = f" (the oldest {len(choices)} here)" if len(choices) < len(items) else ""
        picked = await self.question(f"{count}{shown}: which do you answer?", list(choices),
                                     fallback=f"{count}:\n{inbox_lines(items)}")
        item = choices.get(picked or "")
        if item is None:
            return
        reply = await self.question(inbox_question(item), list(REPLY_CHOICES), fallback=inbox_question(item))
        if reply not in REPLY_CHOICES:
            return
        await self.press(ActionSpec(reply, lsp.CodeActionKind.Empty, names.REPLY_INBOX,
                                    {"reply": REPLY_CHOICES[reply], "permission_ids": [item.permission_id]}))

    def pick_template(self, templates: list[api.Template]) -> None:
        """Offer the templates as buttons; the picked one spawns an agent in the workspace's project (one that
        needs variables says how to give them: an editor's buttons cannot ask for text)."""
        self.ask(self._pick_template(templates))

    async def _pick_template(self, templates: list[api.Template]) -> None:
        choices = template_choices(templates)
        listing = "\n".join(choices)
        picked = await self.question("Spawn an agent from which template?", list(choices),
                                     fallback=f"Prompt templates:\n{listing}", type=lsp.MessageType.Info)
        template = choices.get(picked or "")
        if template is None:
            return
        if template.variables:
            self.show(template_usage(template))
            return
        try:
            project = template.project or self.default_project()
        except InvalidInput as e:
            self.show(f"Spawn from {template.name} failed: {e}", lsp.MessageType.Error)
            return
        await self.press(template_spawn(template, project))
