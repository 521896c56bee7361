"""Every page in headless Chromium at 1440×900 (the README's screenshots, assets/screenshots/) and at 1024×768 (a
projector; test-artifacts/): each page renders without an exception box, in both sizes."""
import os
import re

import pytest
from pageutil import wait_settled

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOTS = os.path.join(ROOT, "assets", "screenshots")
PAGES = [("home", ""), ("playground", "density=moons&layers=8&seed=3"), ("layers", "density=moons&layers=6"),
         ("compare", "density=moons&iters=150&inits=4"), ("timing", ""), ("learn", "")]
SIZES = {"desktop": (1440, 900), "projector": (1024, 768)}


def _act(page, name):
    """What a visitor does first on the page, so the screenshot shows the page at work."""
    if name == "playground":
        page.get_by_role("button", name=re.compile("Train")).click()
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stMetricValue\"]')]"
                               ".some(e => /^[1-9][0-9,]*$/.test(e.innerText.trim()))", timeout=120_000)
        page.wait_for_timeout(6000)
        page.get_by_role("button", name=re.compile("Pause")).click()
        page.get_by_role("button", name=re.compile("Resume")).wait_for(timeout=90_000)
    elif name == "compare":
        page.get_by_role("button", name=re.compile("^.?Run$")).first.click()
        page.get_by_text(re.compile("Finished 150 iterations")).first.wait_for(timeout=120_000)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name, query", PAGES)
def test_page_screenshot(server_url, browser, artifacts, name, query, size):
    w, h = SIZES[size]
    ctx = browser.new_context(viewport={"width": w, "height": h})
    page = ctx.new_page()
    try:
        page.goto(f"{server_url}/{name}" + (f"?{query}" if query else ""))
        wait_settled(page, timeout=120)
        _act(page, name)
        wait_settled(page, timeout=120)
        if name != "home":  # every other page shows a figure once its work is done
            page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=120_000)
        page.wait_for_timeout(1000)  # plotly finishes drawing
        assert page.locator('[data-testid="stException"]').count() == 0, f"{name}: an exception is shown"
        if size == "desktop":
            os.makedirs(SHOTS, exist_ok=True)
            page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))
        page.screenshot(path=os.path.join(artifacts, f"page_{name}_{w}x{h}.png"))
    finally:
        ctx.close()
