"""End to end in headless Chromium: open the Layers page from a link (it trains a small model), play the x -> z
animation, switch to the generative and volume tabs, and change the heatmap's layer.  Screenshots go to
test-artifacts/."""
import os
import re
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _app_pages_missing():
    src = open(os.path.join(ROOT, "app.py"), encoding="utf-8").read()
    return [p for p in re.findall(r'st\.Page\("([^"]+)"', src) if not os.path.exists(os.path.join(ROOT, p))]


pytestmark = pytest.mark.skipif(bool(_app_pages_missing()),
                                reason=f"app.py names pages that do not exist yet: {_app_pages_missing()}")


def _wait_idle(page, timeout=120):
    """Until the page has figures and no script run (or training spinner) is in progress."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    page.wait_for_selector('[data-testid="stMetric"]', timeout=timeout * 1000)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            return
        time.sleep(0.3)


def _metric(page, label):
    m = page.locator('[data-testid="stMetric"]', has_text=label).first
    return m.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_layers_page_from_a_link(server_url, browser, artifacts):
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(f"{server_url}/layers?density=moons&layers=3")
    _wait_idle(page)
    assert _metric(page, "Layers") == "3"
    assert "trained on this page" in page.locator('[data-testid="stMain"]').inner_text()
    plot = page.locator(".js-plotly-plot").first
    plot.wait_for(timeout=30_000)
    title = plot.locator(".gtitle").first
    assert "x (data)" in title.text_content()
    page.screenshot(path=os.path.join(artifacts, "layers_1_normalising.png"), full_page=True)

    plot.locator(".updatemenu-button", has_text="Play").click()  # the animation runs to z
    deadline = time.time() + 30
    while "z = h" not in title.text_content() and time.time() < deadline:
        time.sleep(0.3)
    assert "z = h" in title.text_content()
    page.screenshot(path=os.path.join(artifacts, "layers_2_played.png"), full_page=True)

    page.get_by_role("tab", name=re.compile("generative")).click()
    gen = page.locator('[data-testid="stTabPanel"]:visible .js-plotly-plot').first
    gen.wait_for(timeout=30_000)
    assert "z (base)" in gen.locator(".gtitle").first.text_content()
    page.screenshot(path=os.path.join(artifacts, "layers_3_generative.png"), full_page=True)

    page.get_by_role("tab", name=re.compile("Volume change")).click()
    page.get_by_text("Where a layer expands or contracts").wait_for(timeout=30_000)
    page.get_by_text("layers 1…k together").click()
    _wait_idle(page)
    assert page.get_by_text(re.compile(r"Check on these \d+ points")).count() == 1
    page.screenshot(path=os.path.join(artifacts, "layers_4_volume.png"), full_page=True)
    page.close()
