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
