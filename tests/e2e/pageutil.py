"""Helpers shared by the end-to-end tests (Streamlit pages driven through Playwright)."""
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")


@contextlib.contextmanager
def streamlit_server(log_name: str, env: dict | None = None, timeout: float = 90):
    """``streamlit run app.py`` headless on a free local port until the block ends: yields (url, pid); its output
    goes to test-artifacts/``log_name``."""
    import pytest

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.makedirs(ARTIFACTS, exist_ok=True)
    log = open(os.path.join(ARTIFACTS, log_name), "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"streamlit did not start (exit code {proc.poll()}); see test-artifacts/{log_name}")
            time.sleep(0.5)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _until_no_run(page, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            return
        time.sleep(0.3)


def wait_idle(page, timeout=60):
    """Until the page has rendered its metrics and no script run is in progress."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    page.wait_for_selector('[data-testid="stMetric"]', timeout=timeout * 1000)
    _until_no_run(page, timeout)


def wait_settled(page, timeout=60):
    """Until the app has rendered a title and no script run is in progress (pages without metrics)."""
    page.wait_for_selector('[data-testid="stApp"] h1', timeout=timeout * 1000)
    _until_no_run(page, timeout)


def metric(page, label):
    """The displayed value of the first st.metric whose label contains ``label``."""
    m = page.locator('[data-testid="stMetric"]', has_text=label).first
    return m.locator('[data-testid="stMetricValue"]').inner_text().strip()


def wait_for(fn, timeout, what):
    """``fn()``'s first truthy value, polled every 0.3 s; the test fails after ``timeout`` s naming ``what``."""
    import pytest

    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def step_count(page) -> int:
    """The Playground's step counter as a number."""
    return int(metric(page, "Step").replace(",", ""))


def paused_step(page, timeout=30) -> int:
    """The step counter once it has stopped: two readings a second apart agree."""
    def stable():
        a = step_count(page)
        time.sleep(1.0)
        return a if step_count(page) == a else None

    return wait_for(stable, timeout, "the step counter to stop after Pause")
