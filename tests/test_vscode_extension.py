"""The VS Code extension in a real VS Code: code-server (started here, headless on loopback) with the built
``palot.vsix`` installed, a sample repository opened, and Chromium driven by Playwright.

From the command palette, "Palot: Spawn Agent" (the prompt, then environment, model and permission mode as
quick picks); the agent appears in the Agents view and completes (the scripted model edits README.md); its
file opens in VS Code's diff editor (base ↔ agent); "Apply This File" brings the change to the workspace.
The extension's palot-lsp uses the test's Palot service (``PALOT_HOME`` in code-server's environment).
Screenshots go to ``test-artifacts/vscode-*.png``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from conftest import make_repo
from jupyter_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from lsp_support import README, palot_home
from playwright.sync_api import Page, expect, sync_playwright
from vscode_support import CODE_SERVER, VSIX, code_server, code_server_env, install_extension, require

from palot import PalotPaths

__all__ = ["palot_home"]  # fixtures

EDITED = README.replace("sample project", "sample project, edited by an agent")


def run_command(page: Page, title: str) -> None:
    """F1, the command's title, Enter: as a person runs a command from the palette."""
    page.locator(".monaco-workbench").press("F1")
    box = page.locator(".quick-input-widget input")
    expect(box).to_be_visible()
    box.fill(f">{title}")
    expect(page.locator(".quick-input-list .monaco-list-row", has_text=title).first).to_be_visible()
    box.press("Enter")


def answer(page: Page, asks: str, text: str = "") -> None:
    """Answer the input box or quick pick that ``asks`` (its title or placeholder): type ``text`` (or take the
    first item) and press Enter."""
    box = page.locator(".quick-input-widget:not(.quick-input-widget-closing) input")
    expect(box).to_have_attribute("aria-label", re.compile(re.escape(asks)))
    if text:
        box.fill(text)
    else:  # a quick pick: Enter takes the focused (first) item once the list shows it
        expect(page.locator(".quick-input-list .monaco-list-row.focused")).to_be_visible()
    box.press("Enter")


def shot(page: Page, name: str) -> None:
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / f"vscode-{name}.png"))


def test_spawn_from_the_palette_then_review_the_agents_diff_and_apply_it_in_vs_code(
    palot_home: PalotPaths, tmp_path: Path
) -> None:
    require(CODE_SERVER, "code-server")
    require(VSIX, "the extension's palot.vsix")
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make test-deps` (apt-get install chromium)"
    workspace = make_repo(tmp_path / "project", {"README.md": README})
    user = tmp_path / "vscode"
    env = code_server_env(user, palot_home.home)
    install_extension(user, env)
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("vscode-*.png"):
        old.unlink()

    with code_server(user, env) as vscode, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            page.goto(vscode.folder_url(workspace))
            expect(page.locator(".monaco-workbench")).to_be_visible(timeout=60_000)
            # The status bar item shows once the extension is active.
            status = page.locator(".statusbar-item", has_text="running")
            expect(status).to_contain_text("0 running", timeout=60_000)

            # Spawn from the palette: the prompt, then worktree, OpenCode's default model, default permissions.
            run_command(page, "Palot: Spawn Agent")
            answer(page, "Spawn Agent (1/4)", "edit readme")
            answer(page, "where it runs")
            answer(page, "the model")
            answer(page, "permissions")

            # The agent appears in its own view and completes.
            page.locator(".activitybar .action-item [aria-label='Palot']").first.click()
            view = page.locator(".pane", has=page.locator(".pane-header", has_text="Agents"))
            row = view.locator(".monaco-list-row", has_text="edit readme")
            expect(row).to_be_visible(timeout=30_000)
            expect(row).to_contain_text("completed", timeout=90_000)
            expect(row).to_contain_text("worktree")
            expect(status).to_contain_text("0 running")
            shot(page, "agents-view")

            # Its change in the diff editor: the agent's file under it, base ↔ agent.
            row.click()
            file_row = view.locator(".monaco-list-row", has_text="README.md")
            expect(file_row).to_be_visible(timeout=30_000)
            expect(file_row).to_contain_text("+1 −1")
            file_row.click()
            diff = page.locator(".monaco-diff-editor")
            expect(diff).to_be_visible(timeout=30_000)
            expect(diff.locator(".editor.modified")).to_contain_text("edited by an agent", timeout=30_000)
            expect(diff.locator(".editor.original")).to_contain_text("# sample project")
            expect(page.locator(".tab.active")).to_contain_text("README.md (base ↔ edit readme)")
            shot(page, "diff-editor")

            # Apply This File, from the diff editor's title bar.
            page.locator(".editor-actions .action-label[aria-label='Apply This File']").click()
            deadline = time.monotonic() + 30
            while (workspace / "README.md").read_text() != EDITED:
                assert time.monotonic() < deadline, f"README.md was not applied: {(workspace / 'README.md').read_text()!r}"
                time.sleep(0.1)
            expect(page.locator(".notifications-toasts")).to_contain_text(re.compile("Applied agent .*README.md"),
                                                                          timeout=15_000)
            shot(page, "applied")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "vscode-failure.png"))
            raise
        finally:
            browser.close()
    assert (ARTIFACTS / "vscode-diff-editor.png").stat().st_size > 10_000
