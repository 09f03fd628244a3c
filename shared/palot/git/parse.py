"""Parsing git's NUL-separated (``-z``) output: numstat, name-status, raw records with a patch, and
porcelain status. Pure functions of the text; nothing here runs git.
"""

from __future__ import annotations

def _parse_numstat(output: str) -> dict[str, tuple[int, int, bool]]:
    """Parse ``--numstat -z`` output into ``{path: (additions, deletions, binary)}``."""
    return _numstat_fields(output.split("\0"))


def _numstat_fields(fields: list[str]) -> dict[str, tuple[int, int, bool]]:
    stats: dict[str, tuple[int, int, bool]] = {}
    i = 0
    while i < len(fields):
        field = fields[i]
        i += 1
        if not field:
            continue
        added, deleted, name = field.split("\t", 2)
        if name == "":  # rename/copy: "old\0new" follow
            name = fields[i + 1] if i + 1 < len(fields) else ""
            i += 2
        binary = added == "-"
        stats[name] = (0 if binary else int(added), 0 if binary else int(deleted), binary)
    return stats


def _parse_name_status(output: str) -> list[tuple[str, str, str | None]]:
    """Parse ``--name-status -z`` output into ``(status, path, old_path)`` triples."""
    return _name_status_fields(output.split("\0"))


def _name_status_fields(fields: list[str]) -> list[tuple[str, str, str | None]]:
    entries: list[tuple[str, str, str | None]] = []
    i = 0
    while i < len(fields):
        code = fields[i]
        i += 1
        if not code:
            continue
        letter = code[0]
        if letter in "RC":
            old, new = fields[i], fields[i + 1]
            i += 2
            entries.append((letter, new, old if letter == "R" else None))
        else:
            entries.append((letter, fields[i], None))
            i += 1
    return entries


def _parse_summary_and_patch(
    output: str,
) -> tuple[list[tuple[str, str, str | None]], dict[str, tuple[int, int, bool]], str]:
    """Split ``--raw --numstat -z --patch`` output into the files' ``(status, path, old_path)``, their numstat
    and the patch.

    Raw records (``:modes shas status\\0path\\0``, two paths for a rename or copy) come first, then one
    numstat record per file, then an empty field and the patch (no NUL in it: binary files are base85).
    """
    fields = output.split("\0")
    codes: list[str] = []  # the raw records as ``--name-status -z`` prints them
    i = 0
    while i < len(fields) and fields[i].startswith(":"):
        code = fields[i].rsplit(" ", 1)[1]
        paths = 2 if code[:1] in ("R", "C") else 1
        codes += [code, *fields[i + 1:i + 1 + paths]]
        i += 1 + paths
    end = fields.index("", i) if "" in fields[i:] else len(fields)
    return _name_status_fields(codes), _numstat_fields(fields[i:end]), "\0".join(fields[end + 1:])


def _parse_status(output: str) -> list[tuple[str, str]]:
    """Parse ``status --porcelain=v1 -z`` output into ``(XY, path)`` pairs (a rename's source left out)."""
    fields = output.split("\0")
    entries: list[tuple[str, str]] = []
    i = 0
    while i < len(fields):
        field = fields[i]
        i += 1
        if len(field) < 4:
            continue
        xy, name = field[:2], field[3:]
        entries.append((xy, name))
        if "R" in xy or "C" in xy:
            i += 1  # the next field is the rename/copy source
    return entries
