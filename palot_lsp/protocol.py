"""pygls' protocol, made to answer every request and to hand commands their whole params.

pygls decodes a message's params before any handler runs; when that fails it
logs and drops the message, so the client waits forever for an answer. Here a
request whose params do not decode is answered with an ``InvalidParams`` error
naming what is wrong, and a notification with bad params is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import attrs
import cattrs
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol, lsp_method

from palot.api import PalotError

log = logging.getLogger(__name__)

#: LSP's code for "the request was well formed but failed" (used for Palot's own errors).
REQUEST_FAILED = lsp.LSPErrorCodes.RequestFailed.value


@attrs.define
class UndecodableMessage:
    """A request or notification whose params did not fit the method's type."""

    id: int | str | None
    method: str
    jsonrpc: str
    problem: str


def error_data(error: PalotError) -> dict[str, Any]:
    """A Palot error as structured data: its code, what failed and the fix."""
    return {"error": error.code, "message": error.message, "fix": error.fix}


def request_failed(error: PalotError) -> JsonRpcException:
    """A Palot error as an LSP error response: what failed and the fix, also as structured data."""
    return JsonRpcException(message=str(error), code=REQUEST_FAILED, data=error_data(error))


def _problem(exc: BaseException | None) -> str:
    if isinstance(exc, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc) if exc else "the params do not match the method's type"


class PalotProtocol(LanguageServerProtocol):
    """``LanguageServerProtocol`` that never leaves a request unanswered."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            msg_id = data.get("id")
            if not isinstance(data.get("method"), str) or not isinstance(msg_id, (int, str, type(None))):
                raise
            return UndecodableMessage(id=msg_id, method=data["method"], jsonrpc=str(data.get("jsonrpc")),
                                      problem=_problem(exc.__cause__))

    def handle_message(self, message: Any) -> None:
        if isinstance(message, UndecodableMessage):
            text = f"invalid params for {message.method}: {message.problem}"
            if message.id is None:
                log.warning("ignored a notification: %s", text)
                self.notify(lsp.WINDOW_LOG_MESSAGE, lsp.LogMessageParams(type=lsp.MessageType.Warning,
                                                                          message=f"Palot ignored {text}"))
            else:
                self._send_response(message.id, error=JsonRpcInvalidParams(message=text).to_response_error())
            return
        super().handle_message(message)

    @lsp_method(lsp.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(
        self, params: lsp.ExecuteCommandParams
    ) -> Generator[Any, Any, Any]:
        """Run a registered command with the whole params (arguments as sent, and the work-done token)."""
        handler = self.fm.commands.get(params.command)
        if handler is None:
            known = ", ".join(sorted(self.fm.commands))
            raise JsonRpcInvalidParams(message=f"unknown command {params.command!r}; Palot's commands are: {known}")
        result = yield handler, (params,), None
        return result
