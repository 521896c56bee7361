"""End to end in headless Chromium: open the Layers page from a link (it trains a small model), play the x -> z
animation, switch to the generative and volume tabs, and change the heatmap's layer.  Screenshots go to
test-artifacts/."""
import os
import re
import time

import pytest
from pageutil import metric, wait_idle


def test_layers_page_from_a_link(server_url, browser, artifacts):
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(f"{server_url}/layers?density=moons&layers=3")
    wait_idle(page, 120)
    assert metric(page, "Layers") == "3"
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
    wait_idle(page, 120)
    assert page.get_by_text(re.compile(r"Check on these \d+ points")).count() == 1
    page.screenshot(path=os.path.join(artifacts, "layers_4_volume.png"), full_page=True)
    page.close()
