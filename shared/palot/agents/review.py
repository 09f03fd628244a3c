"""Request changes (pure): review comments on an agent's diff, checked against it and said as one prompt.

A comment names a file of the diff, a line or a range of the file as the agent left it, and what should
change. :func:`check_comments` refuses a comment on a file the agent did not change, or on lines outside
its change, naming the comment and what it could be on; :func:`changes_prompt` quotes the diff's lines under
each comment, so the agent reads exactly what the reviewer saw.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..api import AgentDiff, ReviewComment
from ..errors import InvalidInput
from ..hunks import FileHunks, Hunk, parse_hunks

#: Diff lines quoted under one comment at most (a comment on a whole new file quotes its start).
QUOTE_LINES = 30


def _lines(comment: ReviewComment) -> tuple[int, int]:
    return comment.line, comment.end_line or comment.line


def _label(comment: ReviewComment) -> str:
    first, last = _lines(comment)
    return f"{comment.path}, line {first}" if first == last else f"{comment.path}, lines {first}-{last}"


def _ranges(hunks: FileHunks) -> str:
    return ", ".join(f"{h.new_start}-{h.new_end}" if h.new_end != h.new_start else str(h.new_start)
                     for h in hunks.hunks)


def check_comments(comments: Sequence[ReviewComment], diff: AgentDiff) -> dict[str, FileHunks]:
    """The diff's hunks by file, once every comment is on a file and lines of ``diff``; else InvalidInput."""
    if not diff.files:
        raise InvalidInput(f"agent {diff.agent_id} has no changes to comment on",
                           "send it a plain prompt instead (`palot agents prompt`)")
    changed = {f.path: f for f in diff.files}
    hunks = parse_hunks(diff.patch)
    for number, comment in enumerate(comments, start=1):
        file = changed.get(comment.path.strip().removeprefix("./"))
        if file is None:
            shown = ", ".join(list(changed)[:10]) + (" …" if len(changed) > 10 else "")
            raise InvalidInput(f"comment {number} is on {comment.path}, which the agent did not change",
                               f"comment on a file of its diff: {shown}")
        found = hunks.get(file.path)
        if file.binary or file.status.startswith("D") or found is None or not found.hunks:
            continue  # no lines to check: a binary or deleted file is commented on as a whole
        first, last = _lines(comment)
        if not any(first <= h.new_end and h.new_start <= last for h in found.hunks):
            raise InvalidInput(f"comment {number} is on {_label(comment)}, outside the agent's change",
                               f"comment on lines of its diff of {file.path}: {_ranges(found)}")
    return hunks


def _quote(hunks: list[Hunk], first: int, last: int) -> list[str]:
    """The diff lines (with their +/-/space) at new-file lines ``first``..``last``, deletions among them included."""
    out: list[str] = []
    for hunk in hunks:
        line = hunk.new_start
        for text in hunk.lines:
            mark = text[:1]
            if mark in ("+", " "):
                if first <= line <= last:
                    out.append(text)
                line += 1
            elif mark == "-" and first <= line <= last:
                out.append(text)
    return out


def changes_prompt(comments: Sequence[ReviewComment], hunks: dict[str, FileHunks], note: str | None = None) -> str:
    """One prompt asking for the changes: each comment with its file, lines and the quoted diff lines."""
    parts = ["Please make these changes to your work. Each review comment names a file and lines as you left "
             "them, quotes those lines of your diff, and says what should change.\n"]
    for number, comment in enumerate(comments, start=1):
        path = comment.path.strip().removeprefix("./")
        first, last = _lines(comment)
        found = hunks.get(path)
        quoted = _quote(found.hunks, first, last) if found else []
        block = f"{number}. {_label(comment.model_copy(update={'path': path}))}:\n"
        if quoted:
            shown = quoted[:QUOTE_LINES]
            more = f"\n… ({len(quoted) - QUOTE_LINES} more lines)" if len(quoted) > QUOTE_LINES else ""
            fence = "````" if any("```" in q for q in shown) else "```"
            block += f"{fence}diff\n" + "\n".join(shown) + f"{more}\n{fence}\n"
        block += f"Comment: {comment.comment.strip()}\n"
        parts.append(block)
    if note and note.strip():
        parts.append(f"Also: {note.strip()}\n")
    return "\n".join(parts)
