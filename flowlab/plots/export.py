"""Figures to files: PNG through kaleido when installed, else through headless Chromium (Playwright)."""
from __future__ import annotations

import os

CHROMIUM = "/usr/bin/chromium"  # Debian's; FLOWLAB_CHROMIUM overrides it, Playwright's own build when neither exists
RENDER_TIMEOUT_MS = 30_000


def write_png(fig, path: str, width: int = 1200, height: int | None = None) -> str:
    """Render a plotly figure to PNG at ``path``: kaleido if installed, else headless Chromium through Playwright
    (both optional dependencies, hence imported here).  RuntimeError when neither is available."""
    height = int(height or fig.layout.height or 800)
    try:
        import kaleido  # noqa: F401

        fig.write_image(path, width=width, height=height)
        return path
    except ImportError:
        pass
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("PNG export needs kaleido or playwright; write HTML instead.") from None
    html = fig.to_html(include_plotlyjs=True, full_html=True, config={"staticPlot": True})
    with sync_playwright() as p:
        kw = {"args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]}
        exe = os.environ.get("FLOWLAB_CHROMIUM", CHROMIUM)
        if os.path.exists(exe):
            kw["executable_path"] = exe
        browser = p.chromium.launch(**kw)
        try:
            page = browser.new_page(viewport={"width": width, "height": height + 20})
            page.set_content(html, wait_until="load")
            page.wait_for_selector(".main-svg", timeout=RENDER_TIMEOUT_MS)
            page.locator(".plotly-graph-div").first.screenshot(path=path)
        finally:
            browser.close()
    return path


def standalone_html(fig, filename: str = "flowlab") -> str:
    """A figure as one HTML file that opens offline (plotly.js inlined), with room for every axis label and the
    mode bar's camera button named after the figure."""
    fig = fig.__class__(fig)  # a copy: the caller's figure keeps its layout
    m = fig.layout.margin
    fig.update_layout(margin=dict(l=max(m.l or 0, 70), r=max(m.r or 0, 30), t=max(m.t or 0, 60),
                                  b=max(m.b or 0, 60)))
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    config = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}}
    return fig.to_html(include_plotlyjs=True, full_html=True, config=config)
