"""Helpers shared by the end-to-end tests (Streamlit pages driven through Playwright)."""
import time


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
