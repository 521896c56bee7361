"""AppTest of the home page through app.py (st.navigation): two sentences, a lecture path whose links open valid
settings, the picture FlowLab made with a caption from its record, and a link to every page."""
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
    assert [link.proto.page for link in links][-len(URL_PATHS):] == URL_PATHS  # every page, as declared in app.py


def test_the_lecture_path_links_open_valid_settings_and_add_up():
    from urllib.parse import parse_qsl

    from flowlab.settings import PLAYGROUND
    from pages import home

    at = AppTest.from_file(os.path.join(ROOT, "app.py"), default_timeout=60).run()
    links = at.get("page_link")[:len(home.LECTURE)]
    assert [link.proto.page for link in links] == [p for p, _, _, _ in home.LECTURE]
    minutes = sum(m for _, m, _, _ in home.LECTURE)
    assert any(f"A {minutes}-minute lecture" == h.value for h in at.subheader)
    for link, (page, _, query, _) in zip(links, home.LECTURE):
        q = dict(parse_qsl(link.proto.query_string))
        assert q == (query or {})
        if page == "playground" and q:
            s, notes = PLAYGROUND.parse_query(q)
            assert notes == [] and s["source"] == q["data"]


def test_the_movie_caption_comes_from_its_record():
    from flowlab.system import read_results
    from pages import home

    at = AppTest.from_file(os.path.join(ROOT, "app.py"), default_timeout=60).run()
    rec = read_results(home.MOVIE.with_suffix(".json"))
    caption = next((c.value for c in at.caption if c.value.startswith("Made by FlowLab")), None)
    if not (home.MOVIE.is_file() and rec):
        assert caption is None  # no picture, no caption
        return
    r = rec[0]
    assert f"{r['layers']}-layer" in caption and f"step {r['steps']:,}" in caption and f"KL {r['kl']:.2f}" in caption


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
