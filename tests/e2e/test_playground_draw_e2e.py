"""End to end in headless Chromium: draw a density with the mouse, train on it, pause, and download the learned
density as a PNG and the run as an animated GIF (file signatures and sizes checked)."""
import math
import os
import re
import time

from pageutil import metric, step_count, wait_for

QUERY = "data=draw&layers=6&batch=128&warmup=0"


def test_draw_train_and_download_png_and_gif(server_url, browser, artifacts):
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page.goto(f"{server_url}/playground?{QUERY}")
    canvas = page.locator('canvas[aria-label="drawing canvas"]')
    canvas.wait_for(timeout=90_000)
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for r in (50, 100):  # two strokes: two circles
        page.mouse.move(cx + r, cy)
        page.mouse.down()
        for k in range(1, 49):
            t = 2 * math.pi * k / 48
            page.mouse.move(cx + r * math.cos(t), cy + r * math.sin(t), steps=2)
        page.mouse.up()
        time.sleep(1.0)
    train = page.get_by_role("button", name=re.compile("Train"))
    wait_for(lambda: train.is_enabled(), 60, "the drawing to be accepted (Train enabled)")
    page.screenshot(path=os.path.join(artifacts, "draw_1_drawn.png"))
    train.click()
    wait_for(lambda: step_count(page) >= 2000, 120, "2,000 training steps")
    assert metric(page, "KL(p‖q)") not in ("—", "n/a")
    page.get_by_role("button", name=re.compile("Pause")).click()
    page.get_by_role("button", name=re.compile("Resume")).wait_for(timeout=60_000)
    page.screenshot(path=os.path.join(artifacts, "draw_2_trained.png"), full_page=True)
    page.get_by_text("Downloads", exact=True).click()
    for label, sig, name in (("Learned density (.png)", b"\x89PNG\r\n\x1a\n", "png"),
                             ("Training animation (.gif)", b"GIF89a", "gif")):
        button = page.get_by_role("button", name=re.compile(re.escape(label)))
        button.wait_for(timeout=30_000)
        with page.expect_download(timeout=60_000) as info:
            button.click()
        path = os.path.join(artifacts, f"draw_download.{name}")
        info.value.save_as(path)
        data = open(path, "rb").read()
        assert data.startswith(sig), (label, data[:8])
        assert 1_000 < len(data) <= 5 * 1024 * 1024, (label, len(data))
    page.close()
