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


def base_text(text: str, hunks: Sequence[Hunk], path: str) -> str:
    """The file as it was at the agent's base commit: ``text`` (the agent's version) with its hunks undone.

    An editor's diff view needs both versions; the api gives the agent's diff, and the agent's version is the
    file in its environment. Raises :class:`HunkConflict` when ``text`` does not hold a hunk's new lines (the
    agent changed the file again since the diff was read).
    """
    lines = text.splitlines(keepends=True)
    for hunk in reversed(hunks):  # from the end, so earlier hunks' line numbers still hold
        old: list[str] = []
        new: list[str] = []
        previous = " "
        for line in hunk.lines:
            mark, body = line[:1], line[1:]
            if mark == "\\":  # "\ No newline at end of file": the line before it ends the file without one
                for side in ((old,) if previous == "-" else (new,) if previous == "+" else (old, new)):
                    side[-1] = side[-1].removesuffix("\n")
                continue
            if mark in (" ", "-"):
                old.append(body + "\n")
            if mark in (" ", "+"):
                new.append(body + "\n")
            previous = mark
        first = hunk.new_start - 1 if hunk.new_count else hunk.new_start
        if [x.rstrip("\r\n") for x in lines[first:first + len(new)]] != [x.rstrip("\n") for x in new]:
            raise HunkConflict(f"{path} no longer has the lines {first + 1}–{first + len(new)} the agent wrote")
        lines[first:first + len(new)] = old
    return "".join(lines)
