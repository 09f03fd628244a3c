"""One file of an agent's change as the editor's own edit (pure): hunks → ``TextEdit``s on the document.

The Palot API applies all of an agent's changes at once (``apply``); "Apply the agent's change to this
file" needs one file of them. The editor can do that itself: each hunk's old lines must be in the document
where the hunk says (else it conflicts and nothing is edited), and become the hunk's new lines. The result is
a ``WorkspaceEdit`` the editor applies to the open buffer, like any refactoring; git and the store are not
touched.
"""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types as lsp

from palot.api import Hunk


class HunkConflict(ValueError):
    """The document no longer has the lines a hunk replaces."""


def _old_new(hunk: Hunk) -> tuple[list[str], list[str]]:
    old = [line[1:] for line in hunk.lines if line[:1] in (" ", "-")]
    new = [line[1:] for line in hunk.lines if line[:1] in (" ", "+")]
    return old, new


def hunk_edits(lines: Sequence[str], hunks: Sequence[Hunk], path: str) -> list[lsp.TextEdit]:
    """The edits that turn ``lines`` (the document, line ends kept) into the agent's version of the file.

    Raises :class:`HunkConflict` when a hunk's old lines are not where it says.
    """
    plain = [line.rstrip("\r\n") for line in lines]
    edits: list[lsp.TextEdit] = []
    for hunk in hunks:
        old, new = _old_new(hunk)
        # A hunk that adds to an empty file says old_start 0; otherwise old_start is 1-based.
        first = hunk.old_start - 1 if hunk.old_count else hunk.old_start
        if plain[first:first + len(old)] != old:
            raise HunkConflict(f"{path} no longer has the lines {first + 1}–{first + len(old)} the agent changed")
        end = first + len(old)
        text = "".join(line + "\n" for line in new)
        if end > len(lines) and lines and not lines[-1].endswith("\n") and text:
            text = text[:-1]  # the file ended without a newline: keep it that way
        edits.append(lsp.TextEdit(range=lsp.Range(lsp.Position(first, 0), lsp.Position(end, 0)), new_text=text))
    return edits


def workspace_edit(uri: str, version: int | None, edits: list[lsp.TextEdit]) -> lsp.WorkspaceEdit:
    """A ``WorkspaceEdit`` of ``edits`` to the document (its version checked by editors that track it)."""
    document = lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
    return lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(text_document=document,
                                                                    edits=list(edits))])  # type: ignore[arg-type]
