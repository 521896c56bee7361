"""What every page shares: the page table, ``page_setup()`` (first call on every page), URL notes, the device line,
upload ids and syncing settings to the address bar.  Streamlit does not treat this subfolder of pages/ as a page."""
from __future__ import annotations

import hashlib
from typing import NamedTuple

import streamlit as st
from streamlit.runtime import exists, get_instance
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from flowlab.schema import plain
from flowlab.system import device_label


class PageInfo(NamedTuple):
    path: str
    title: str
    icon: str
    url_path: str
    what: str


PAGES = (
    PageInfo("pages/home.py", "Home", ":material/home:", "home", "what FlowLab is, and a path through it"),
    PageInfo("pages/playground.py", "Playground", ":material/tune:", "playground",
             "train a flow live on a toy density, your text, a picture, a drawing or your own points"),
    PageInfo("pages/layers.py", "Layers", ":material/layers:", "layers",
             "follow the points through every layer and see each layer's log-determinant"),
    PageInfo("pages/compare.py", "Compare", ":material/compare_arrows:", "compare",
             "ordinary vs relative vs self-normalizing gradients, side by side"),
    PageInfo("pages/timing.py", "Timing", ":material/timer:", "timing",
             "how the cost of each gradient grows with the dimension"),
    PageInfo("pages/learn.py", "Learn", ":material/school:", "learn",
             "short lessons: change of variables, flows, the Jacobian term"),
)
LINK = ":material/link:"
WARN = ":material/warning:"


def page_setup():
    """First call on every page.  A shared link opened on a freshly started server reaches a file of pages/ before
    app.py has run ``st.navigation`` once; Streamlit then serves pages/ in its old multipage mode (no navigation, no
    wide layout).  Switch that mode off and rerun, so app.py's navigation routes the URL."""
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def url_notes(notes):
    """One warning per note about a value taken from (or refused in) the link, shown as typed (``plain``: a value
    from a link never becomes a link, picture or formatting)."""
    for note in notes or []:
        st.warning(plain(note), icon=LINK)


def sync_query(query: dict):
    """Write ``query`` to the address bar when it differs, so the link always reproduces the page."""
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


def upload_id(raw: bytes) -> str:
    """A short content id for an uploaded file (same bytes, same id)."""
    return hashlib.sha1(raw).hexdigest()[:12]


def device_line() -> str:
    return f"**Device:** {device_label()}"


LIVE_CSS = """<style>
/* a page that redraws several times a second: never fade the previous frame while the next one is drawn */
[data-testid="stElementContainer"][data-stale="true"] { opacity: 1 !important; transition: none !important; }
/* room for the figures on a projector (1024x768): less empty space above the title */
.block-container, [data-testid="stMainBlockContainer"] { padding-top: 2.2rem !important; }
</style>"""


def live_css():
    """CSS of the live pages (see LIVE_CSS)."""
    st.html(LIVE_CSS)


def session_alive():
    """A callable telling a background worker whether this browser session still exists (None outside a server,
    e.g. in AppTest: the worker then relies on its idle timeout)."""
    ctx = get_script_run_ctx()
    if ctx is None or not exists():
        return None
    runtime, sid = get_instance(), ctx.session_id
    return lambda: runtime.is_active_session(sid)


def chart_config(filename: str) -> dict:
    """Plotly's mode bar with its camera button: a PNG at twice the size shown, named after what it shows."""
    return {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"],
            "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}}
