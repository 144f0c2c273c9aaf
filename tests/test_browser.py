"""End to end, as a user sees it: TensorBoard (on 127.0.0.1 only, a free port, stopped by the test) opened in
headless Chromium through Playwright; the HPARAMS table of a 4-run sweep shows the swept keys and hp/val_acc
without a click. Skipped, with the reason, where Playwright or a Chromium is missing (CI installs Debian's
``chromium`` and the ``playwright`` of the dev extra; no ``playwright install`` download is needed).
``NNDL_SCREENSHOTS=<dir>`` keeps the screenshots."""

import os
import shutil
from pathlib import Path

import pytest

from cli import SERVER_TIMEOUT_S, tensorboard

VIEWPORT = {"width": 1400, "height": 900}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    """The system's Chromium, or a skip saying what is missing."""
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    found = os.environ.get("NNDL_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if not found:
        pytest.skip("no Chromium to drive (apt-get install chromium, or NNDL_CHROMIUM=<path>)")
    return found


def test_hparams_table_opens_on_the_swept_keys_and_the_monitored_metric(four_run_sweep, sweep_jobs, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    shots = Path(os.environ.get("NNDL_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with tensorboard(four_run_sweep, tmp_path / "tensorboard.log") as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{base}/#hparams")
            table = page.locator("tf-hparams-table-view")
            table.get_by_text("hp/val_acc", exact=True).wait_for(timeout=SERVER_TIMEOUT_S * 1000)
            table.get_by_text(sweep_jobs[-1]).first.wait_for(timeout=SERVER_TIMEOUT_S * 1000)  # every run's row
            page.screenshot(path=str(shots / "hparams_table.png"))
            cells = table.locator("vaadin-grid-cell-content").all_inner_texts()
            header = cells[: cells.index("hp/val_acc") + 1]
            assert {"cost", "optimizer"} <= set(header), header  # the swept keys, ticked by default
            for name in ("cost", "optimizer", "hp/val_acc"):  # on screen, not scrolled off to the right
                box = table.get_by_text(name, exact=True).first.bounding_box()
                assert box and box["x"] + box["width"] <= VIEWPORT["width"], (name, box)
            assert all(table.get_by_text(job).count() for job in sweep_jobs)
            page.get_by_text("PARALLEL COORDINATES VIEW").click()
            page.wait_for_timeout(1000)
            page.screenshot(path=str(shots / "hparams_parallel_coordinates.png"))
        finally:
            browser.close()
