"""Start `streamlit run app.py` headless on a free port for the end-to-end tests, and stop it afterwards."""
import os

import pytest
from pageutil import ARTIFACTS, streamlit_server

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def server_url():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"end-to-end tests need Chromium at {CHROMIUM} (Debian package 'chromium'); not installed here")
    pytest.importorskip("playwright.sync_api", reason="end-to-end tests need the 'playwright' Python package")
    with streamlit_server("e2e_server.log", timeout=60) as (url, _):
        yield url


@pytest.fixture(scope="module")
def chromium_browser():
    """One Chromium per test module: Playwright's sync API allows one running instance per thread, and while it runs
    it holds an asyncio loop in this thread (asyncio.run in a later test module would fail), so it ends with the
    module."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"end-to-end tests need Chromium at {CHROMIUM} (Debian package 'chromium'); not installed here")
    pytest.importorskip("playwright.sync_api", reason="end-to-end tests need the 'playwright' Python package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def browser(server_url, chromium_browser):
    return chromium_browser


@pytest.fixture
def artifacts():
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS
