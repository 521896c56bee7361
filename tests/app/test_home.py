"""AppTest of the home page through app.py (st.navigation): two sentences and a link to every page."""
import os
import re

from streamlit.testing.v1 import AppTest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
URL_PATHS = ["playground", "layers", "compare", "timing", "learn"]


def test_home_is_the_default_page_and_links_every_page():
    at = AppTest.from_file(os.path.join(ROOT, "app.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "FlowLab"
    intro = at.markdown[0].value
    assert "normalizing flows" in intro
    assert len(re.findall(r"(?<! al)[.!?](?:\s|$)", intro)) == 2  # two sentences ("et al." is no full stop)
    links = at.get("page_link")
    assert len(links) == len(URL_PATHS)
    assert [link.proto.page for link in links] == URL_PATHS  # the url_paths declared in app.py


def test_every_linked_page_exists():
    for name in URL_PATHS:
        assert os.path.isfile(os.path.join(ROOT, "pages", f"{name}.py")), f"pages/{name}.py is missing"


def test_an_unwritable_compile_cache_is_one_warning_in_the_sidebar(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("FLOWLAB_JAX_CACHE", str(blocker / "cache"))
    import streamlit as st

    st.cache_resource.clear()  # the cache folder is decided once per server
    try:
        at = AppTest.from_file(os.path.join(ROOT, "app.py"), default_timeout=60).run()
        assert not at.exception, [e.value for e in at.exception]
        warns = [w.value for w in at.sidebar.warning]
        assert len(warns) == 1 and warns[0].startswith("No compilation cache")
        assert at.title[0].value == "FlowLab"  # the page still works
    finally:
        st.cache_resource.clear()
