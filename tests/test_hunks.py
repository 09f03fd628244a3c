"""Changed line ranges parsed from real `git diff` output."""

from __future__ import annotations

from pathlib import Path

from conftest import git, make_repo
from palot import git as pgit
from palot.hunks import parse_hunks


async def test_ranges_of_added_replaced_and_deleted_lines_from_a_real_diff(tmp_path: Path):
    original = "".join(f"line {i}\n" for i in range(1, 21))
    repo = make_repo(tmp_path / "r", {"a.txt": original, "gone.txt": "bye\n"})
    lines = original.splitlines(keepends=True)
    lines[1] = "line 2 changed\n"  # replaced line 2
    lines.insert(10, "inserted\n")  # new line 11
    del lines[18]  # deletes old line 18 ("line 18")
    (repo / "a.txt").write_text("".join(lines))
    (repo / "new.txt").write_text("one\ntwo\n")
    (repo / "gone.txt").unlink()
    diff = await pgit.diff(repo, git(repo, "rev-parse", "HEAD").strip())
    files = parse_hunks(diff.patch)
    assert set(files) == {"a.txt", "new.txt"}
    ranges = [r for h in files["a.txt"].hunks for r in h.changed_ranges()]
    assert ranges == [(2, 2), (11, 11), (19, 19)]
    assert [h.changed_ranges() for h in files["new.txt"].hunks] == [[(1, 2)]]


def test_overlapping_hunks_are_detected():
    patch_a = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -5,2 +5,3 @@\n x\n+y\n x\n"
    patch_b = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -6,1 +6,2 @@\n x\n+z\n"
    patch_c = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -40,1 +40,2 @@\n x\n+z\n"
    a, b, c = (parse_hunks(p)["f"].hunks[0] for p in (patch_a, patch_b, patch_c))
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(c)
