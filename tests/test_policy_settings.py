"""settings.toml: every mistake is named with its line and changes nothing; notifications within a moment merge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from palot import api
from palot.errors import SettingsInvalid
from palot.policies.notify import Notifier
from palot.policies.settings import SettingsFile, parse

GOOD = """\
[budgets]
agent_usd = 0.5
day_usd = 20

[projects.app]
agent_tokens = 100000

[[rules]]
tool = "bash"
pattern = "npm test*"
action = "allow"

[[rules]]
project = "app"
tool = "bash"
pattern = "git push*"
action = "ask"
timeout_minutes = 30
"""


@pytest.mark.parametrize(("change", "line", "words"), [
    (("agent_usd = 0.5", "agent_usd = -1"), 2, "budgets.agent_usd: Input should be greater than 0"),
    (('tool = "bash"\npattern = "npm', 'tool = "bsh"\npattern = "npm'), 9, "rules[0].tool: unknown tool 'bsh'"),
    (('pattern = "git push*"', 'pattern = "git [push"'), 16, "rules[1].pattern: bad pattern"),
    (("timeout_minutes = 30", "timeout_minutes = 30\nwhen = 2"), 19, "unknown setting 'when'"),
    (('action = "allow"', 'action = "allow"\ntimeout_minutes = 1'), 8, 'timeout_minutes applies to action = "ask"'),
    (("day_usd = 20", "day_usd = "), None, "fix the TOML syntax"),
    (("day_usd = 20", "day_usd = 20\ncloud_poll_seconds = 0.5"), 4,
     "budgets.cloud_poll_seconds: Input should be greater than or equal to 1"),
])
def test_a_mistake_names_its_line_and_the_fix(change: tuple[str, str], line: int | None, words: str) -> None:
    with pytest.raises(SettingsInvalid) as caught:
        parse(GOOD.replace(*change))
    text = str(caught.value)
    assert words in text, text
    if line is not None:
        assert f"settings.toml line {line}:" in text, text
        assert "the last good settings stay in use" in text


def test_rules_match_by_project_tool_and_every_pattern() -> None:
    settings = parse(GOOD)
    allow, ask = settings.rules
    assert allow.matches("/src/app", "app", "bash", ["npm test -- --watch"])
    assert not allow.matches("/src/app", "app", "bash", ["npm test", "rm -rf /"])  # every pattern must match
    assert not allow.matches("/src/app", "app", "edit", ["npm test"])
    assert ask.matches("/src/app", "app", "bash", ["git push origin main"])
    assert not ask.matches("/src/web", "web", "bash", ["git push origin main"])
    assert ask.describe(2) == "rule 2: ask bash 'git push*' in app"
    assert settings.project("/src/app", "app") is not None and settings.project("/src/web", "web") is None


def test_a_bad_file_keeps_the_last_good_settings_and_a_fix_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    file = SettingsFile(path)
    assert not file.refresh() and file.current.budgets.agent_usd is None  # no file: the defaults
    path.write_text(GOOD)
    assert file.refresh() and file.current.budgets.agent_usd == 0.5 and file.error is None
    path.write_text(GOOD.replace("agent_usd = 0.5", "agent_usd = 'lots'"))
    assert not file.refresh()
    assert file.error and "line 2" in file.error and file.current.budgets.agent_usd == 0.5
    assert file.view().error == file.error and file.view().settings["budgets"]["agent_usd"] == 0.5
    path.write_text(GOOD.replace("agent_usd = 0.5", "agent_usd = 0.75"))
    assert file.refresh() and file.error is None and file.current.budgets.agent_usd == 0.75


async def test_ten_agents_done_within_a_moment_make_one_notification(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text("[notifications]\ncoalesce_seconds = 0.3\n")
    file = SettingsFile(tmp_path / "settings.toml")
    file.refresh()
    published: list[api.Event] = []
    notifier = Notifier(file, published.append)
    for n in range(10):
        notifier.notify("done", "completed", f"agent {n} is done", "in app", action=f"palot agents diff ag_{n}",
                        agent_ids=[f"ag_{n}"])
    notifier.notify("needs_you", "failed", "agent x failed", "boom", action="palot agents show ag_x",
                    agent_ids=["ag_x"])
    await asyncio.sleep(0.6)
    notes = [e.notification for e in published if e.notification is not None]
    assert len(notes) == 2, notes
    done = next(n for n in notes if n.kind == "done")
    assert done.title == "10 agents are done" and done.agent_ids == [f"ag_{n}" for n in range(10)]
    assert done.body.splitlines()[0] == "agent 0 is done: in app" and len(done.body.splitlines()) == 10
    failed = next(n for n in notes if n.kind == "needs_you")
    assert failed.title == "agent x failed" and failed.action == "palot agents show ag_x"

    (tmp_path / "settings.toml").write_text('[notifications]\ncoalesce_seconds = 0\n[notifications.editors]\n'
                                            'kinds = ["needs_you"]\n')
    file.refresh()
    published.clear()
    notifier.notify("done", "completed", "agent y is done", agent_ids=["ag_y"])
    notifier.notify("needs_you", "permission", "agent z asks: bash ls", agent_ids=["ag_z"])
    assert [e.notification.title for e in published if e.notification] == ["agent z asks: bash ls"]
    await notifier.close()
