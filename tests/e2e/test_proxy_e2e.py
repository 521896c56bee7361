"""End to end through nginx: two Streamlit replicas started by deploy/run_local.py, driven in headless Chromium.

Two browsers from one address land on different replicas (the response header nginx adds names the replica, and the
cookie pins it), and each keeps its session there: a Playground trains, pauses and keeps its step count across a
rerun, a CSV upload (an HTTP PUT beside the WebSocket) reaches the process that holds the uploader's session and
trains, and the shared URL opens the same settings in a fresh session."""
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from pageutil import metric, paused_step, step_count, wait_for, wait_idle

from flowlab.plots.export import CHROMIUM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("run_local", os.path.join(ROOT, "deploy", "run_local.py"))
run_local = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_local)
QUERY = "density=moons&layers=4&method=relative&seed=3&batch=128"
HEADER = run_local.REPLICA_HEADER.lower()


def _settings(page):
    side = page.locator('[data-testid="stSidebar"]')
    return {"density": side.get_by_role("combobox", name="Density").input_value(),
            "layers": side.locator('[data-testid="stSlider"] input[type="range"]').first.input_value(),
            "contour": side.locator('[data-testid="stCheckbox"] input').is_checked()}


@pytest.fixture(scope="module")
def cluster():
    """deploy/run_local.py with two replicas on free ports, nginx on 127.0.0.1; its URL. Stopped with SIGINT."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"end-to-end tests need Chromium at {CHROMIUM} (Debian package 'chromium'); not installed here")
    pytest.importorskip("playwright.sync_api", reason="end-to-end tests need the 'playwright' Python package")
    if not run_local.find_nginx():
        pytest.skip("the proxy test needs nginx (Debian: apt-get install -y nginx); not installed here")
    first = run_local.free_ports(3)
    run_dir = tempfile.mkdtemp(prefix="flowlab-proxy-e2e-")
    log_path = os.path.join(run_dir, "launcher.log")
    url = f"http://127.0.0.1:{first + 2}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, os.path.join("deploy", "run_local.py"), "--replicas", "2",
                                 "--first-port", str(first), "--port", str(first + 2), "--bind", "127.0.0.1",
                                 "--train-slots", "1", "--run-dir", run_dir],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        def up():
            if proc.poll() is not None:
                pytest.fail(f"run_local.py exited ({proc.returncode}): {open(log_path).read()[-2000:]}")
            return run_local.healthy(url)

        wait_for(up, 120, "both replicas and nginx (deploy/run_local.py)")
        yield url
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the launcher stops nginx, then the replicas
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out = os.path.join(ROOT, "test-artifacts", "proxy_e2e")
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(run_dir, out, ignore=shutil.ignore_patterns("tmp", "*.conf", "*.pid"))
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def chromium(cluster, chromium_browser):
    return chromium_browser


def _open(browser, url):
    """A new browser (its own cookie jar) on ``url``: (context, page, the replica that served the page)."""
    ctx = browser.new_context(viewport={"width": 1500, "height": 2000})
    page = ctx.new_page()
    response = page.goto(url)
    assert response.status == 200
    replica = response.headers[HEADER]
    wait_idle(page)
    cookie = {c["name"]: c["value"] for c in ctx.cookies()}[run_local.COOKIE]
    assert cookie == replica  # pinned to the replica that answered
    return ctx, page, replica


def _no_errors(page):
    assert page.locator('[data-testid="stException"]').count() == 0
    text = page.locator('[data-testid="stApp"]').inner_text()
    assert "status code" not in text and "Invalid session" not in text, text[-500:]


def test_two_browsers_on_one_address_keep_their_own_replica_and_session(cluster, chromium, artifacts):
    url = f"{cluster}/playground?{QUERY}"
    ctx_a, a, replica_a = _open(chromium, url)
    ctx_b, b, replica_b = _open(chromium, url)
    assert replica_a != replica_b  # same client address, two replicas: new browsers are dealt out in turn

    # A trains and pauses; its worker thread lives in replica A, reached over A's WebSocket through nginx
    a.get_by_role("button", name=re.compile("Train")).click()
    s1 = wait_for(lambda: step_count(a), 90, "the first chunk in browser A")
    wait_for(lambda: step_count(a) > s1, 30, "A's step counter to move")
    a.get_by_role("button", name=re.compile("Pause")).click()
    a.get_by_role("button", name=re.compile("Resume")).wait_for(timeout=30_000)
    paused = paused_step(a)
    a.locator('[data-testid="stSidebar"]').get_by_text("More settings").click()
    a.get_by_text("Contour lines on the learned density").click()  # a full script rerun of A's session
    wait_for(lambda: a.locator('[data-testid="stCheckbox"] input:checked').count() == 1, 30, "the rerun")
    wait_idle(a)
    assert step_count(a) == paused  # the session (and its paused training) survived the rerun on its replica
    _no_errors(a)
    a.screenshot(path=os.path.join(artifacts, "proxy_1_browser_a_paused.png"), full_page=True)

    # B uploads a CSV: the PUT goes beside the WebSocket and must reach B's replica (else HTTP 400, streamlit#4173)
    b.locator('[data-testid="stSidebar"]').get_by_text("Upload CSV").click()
    points = np.random.default_rng(0).normal(size=(300, 2))
    csv = "x,y\n" + "\n".join(f"{x:.5f},{y:.5f}" for x, y in points)
    b.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(
        files=[{"name": "class_points.csv", "mimeType": "text/csv", "buffer": csv.encode()}])
    wait_for(lambda: metric(b, "KL") == "n/a" if b.locator('[data-testid="stMetric"]').count() else None, 60,
              "B's replica to read the uploaded points (the KL metric turns to n/a for uploaded data)")
    assert "class_points.csv" in b.locator('[data-testid="stSidebar"]').inner_text()
    b.get_by_role("button", name="Step", exact=True).click()  # one chunk on the uploaded points, in replica B
    wait_for(lambda: step_count(b), 90, "a chunk on the uploaded points in browser B")
    _no_errors(b)
    b.screenshot(path=os.path.join(artifacts, "proxy_2_browser_b_upload.png"), full_page=True)

    # A is untouched by B, and a reload of A's page (a new session) goes back to A's replica
    assert step_count(a) == paused
    shared = a.url
    assert "density=moons" in shared and "layers=4" in shared
    assert a.reload().headers[HEADER] == replica_a
    wait_idle(a)
    assert step_count(a) == 0  # a reload is a new Streamlit session: same settings, its own training

    # the shared URL in a third browser: same settings (the contour box ticked in A's rerun too), a fresh session
    ctx_c, c, _ = _open(chromium, shared)
    assert step_count(c) == 0
    assert _settings(c) == _settings(a) and _settings(c)["contour"]
    assert "moons" in _settings(c)["density"].lower() and _settings(c)["layers"] == "4"
    _no_errors(c)
    for ctx in (ctx_a, ctx_b, ctx_c):
        ctx.close()
