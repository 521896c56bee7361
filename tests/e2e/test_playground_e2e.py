"""End to end in headless Chromium: load the Playground, train on moons, watch the step counter, the rate and the KL
change, pause, resume, pause, then open the shared URL in a fresh session and find the same settings.  Screenshots go
to test-artifacts/."""
import os
import re
import time

from pageutil import metric, paused_step, step_count, wait_for, wait_idle

QUERY = "density=moons&layers=8&method=relative&seed=3&batch=128"


def _settings(page):
    side = page.locator('[data-testid="stSidebar"]')
    return {
        "density": side.get_by_role("combobox", name="Density").input_value(),
        "layers": side.locator('[data-testid="stSlider"] input[type="range"]').first.input_value(),
        "seed": side.get_by_role("spinbutton", name="Seed").input_value(),
        "batch": side.get_by_role("spinbutton", name="Batch size").input_value(),
        "method": side.locator('[data-testid="stRadio"]').nth(1).locator("input:checked").evaluate(
            "e => e.closest('label').innerText"),
    }


def test_train_pause_and_share_the_url(server_url, browser, artifacts):
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(f"{server_url}/playground?{QUERY}")
    wait_idle(page)
    assert metric(page, "Step") == "0"
    # a deep link on a fresh server still goes through app.py's st.navigation (its sidebar caption names JAX)
    assert "JAX" in page.locator('[data-testid="stSidebar"]').inner_text()
    before = _settings(page)
    assert "moons" in before["density"].lower() and before["layers"] == "8" and before["seed"] == "3"
    assert before["batch"] == "128" and "relative" in before["method"]
    page.screenshot(path=os.path.join(artifacts, "playground_1_loaded.png"), full_page=True)

    page.get_by_role("button", name=re.compile("Train")).click()
    s1 = wait_for(lambda: step_count(page) or None, 90, "the first chunk")
    kl1 = wait_for(lambda: metric(page, "KL") if metric(page, "KL") != "—" else None, 30, "a KL value")
    wait_for(lambda: step_count(page) > s1, 30, "the step counter to move")
    wait_for(lambda: metric(page, "KL") != kl1, 30, "the KL value to change")
    page.screenshot(path=os.path.join(artifacts, "playground_2_training.png"), full_page=True)

    rate = metric(page, "Steps/s")
    assert rate != "—" and int(rate.replace(",", "")) > 0  # the honest rate: steps per wall-clock second

    page.get_by_role("button", name=re.compile("Pause")).click()
    page.get_by_role("button", name=re.compile("Resume")).wait_for(timeout=30_000)
    paused = paused_step(page)  # the pause lands after the chunk in progress: the counter stops, then stays
    time.sleep(1.5)
    assert step_count(page) == paused  # pause took effect
    page.screenshot(path=os.path.join(artifacts, "playground_3_paused.png"), full_page=True)

    page.get_by_role("button", name=re.compile("Resume")).click()  # resumes where it stopped
    wait_for(lambda: step_count(page) > paused, 30,
              "the step counter to move again after Resume")
    page.get_by_role("button", name=re.compile("Pause")).click()
    page.get_by_role("button", name=re.compile("Resume")).wait_for(timeout=30_000)
    paused_step(page)
    shared = page.url
    assert "layers=8" in shared and "density=moons" in shared and "seed=3" in shared

    other = browser.new_page(viewport={"width": 1500, "height": 2200})  # a colleague opens the link
    other.goto(shared)
    wait_idle(other)
    assert _settings(other) == before
    assert metric(other, "Step") == "0"  # a fresh session: same settings, its own training
    other.screenshot(path=os.path.join(artifacts, "playground_4_shared_link.png"), full_page=True)
    other.close()
    page.close()
