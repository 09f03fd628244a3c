"""The dashboard in a real browser: JupyterLab (started here) and system Chromium driven by Playwright.

Run All on the example notebook, then spawn an agent from the dashboard's form
and watch its row reach "completed" and its diff render. A screenshot is
saved to ``test-artifacts/jupyter-dashboard.png``. Chromium is required:
without it this test fails (``make test-deps`` installs it).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from jupyter_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    EXAMPLE_NOTEBOOK,
    jupyterlab,
    notebook_home,
    notebook_service,
)
from playwright.sync_api import Page, expect, sync_playwright

FORM_PROMPT = "Write down the release checklist for version 1.0"


def _run_all(page: Page) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def test_run_all_then_spawn_from_the_form_shows_the_agent_completed_with_its_diff(
    tmp_path: Path, opencode_bin: Path
) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make test-deps` (apt-get install chromium)"
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(EXAMPLE_NOTEBOOK, root / "dashboard.ipynb")
    user_home = tmp_path / "user"  # a newcomer right after `make setup`: no PALOT_HOME, nothing set by hand
    home = notebook_home(user_home)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "jupyter-dashboard.png"
    shot.unlink(missing_ok=True)

    # The service runs before the kernel starts and stops after it.
    with notebook_service(user_home), jupyterlab(root, user_home) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1680, "height": 1050})
            page.goto(lab.lab_url("dashboard.ipynb"))
            expect(page.locator(".jp-Notebook")).to_be_visible(timeout=60_000)
            # The kernel starts by itself (no dialog), then Run All.
            expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60_000)
            _run_all(page)

            dashboard = page.locator(".palot-dashboard")
            expect(dashboard).to_be_visible(timeout=90_000)
            # The notebook's own agent goes live and completes while its cell waits.
            notebook_row = dashboard.locator(".palot-row", has_text="Greeting CLI")
            expect(notebook_row).to_have_class(re.compile("palot-st-completed"), timeout=120_000)
            expect(page.locator(".jp-InputPrompt", has_text="*")).to_have_count(0, timeout=60_000)

            # Spawn from the form.
            dashboard.get_by_role("button", name="+ Agent").click()
            form = dashboard.locator(".palot-form")
            expect(form.locator("input").first).to_have_value(str(home / "sample-project"))
            form.get_by_placeholder("What should this agent work on?").fill(FORM_PROMPT)
            form.get_by_role("button", name="Launch").click()

            row = dashboard.locator(".palot-row", has_text="Write down the release checklist")
            expect(row).to_be_visible(timeout=30_000)
            expect(row).to_have_class(re.compile("palot-selected"))
            expect(row).to_have_class(re.compile("palot-st-completed"), timeout=120_000)
            expect(row.locator(".palot-c-status")).to_contain_text("completed")

            detail = dashboard.locator(".palot-detail")
            expect(detail.locator(".palot-detail-title")).to_have_text(FORM_PROMPT)
            expect(detail.locator(".palot-act", has_text="NOTES.md").first).to_be_visible(timeout=30_000)
            detail.get_by_role("tab", name="Diff").click()
            diff = detail.locator(".palot-diff")
            expect(diff).to_be_visible(timeout=30_000)
            expect(diff.locator(".palot-file")).to_contain_text("NOTES.md")
            expect(diff.locator(".palot-line-add").first).to_be_visible()
            expect(diff).to_contain_text("written by Palot's scripted model")
            page.wait_for_timeout(300)
            dashboard.screenshot(path=str(shot))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "jupyter-dashboard-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
