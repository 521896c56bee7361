"""Helpers shared by the AppTests: open a page (with a query and session state), check for errors, read metrics and
widgets, and wait for a page whose work happens in the background."""
import os
import re
import time

from streamlit.testing.v1 import AppTest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 120


def page_path(name: str) -> str:
    return os.path.join(ROOT, "pages", f"{name}.py")


def open_page(name: str, query=None, state=None, timeout=TIMEOUT, run=True):
    """AppTest of pages/<name>.py with URL query values and session-state entries set before the first run."""
    at = AppTest.from_file(page_path(name), default_timeout=timeout)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run() if run else at


def no_errors(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def widget(at, key):
    for kind in ("selectbox", "slider", "radio", "number_input", "checkbox", "text_input", "multiselect"):
        for w in getattr(at, kind):
            if w.key == key:
                return w
    raise KeyError(key)


def rerun_until(at, cond, timeout=60.0, pause=0.1):
    """Rerun the page until ``cond(at)`` holds (work in a background thread); fails after ``timeout`` seconds."""
    t0 = time.time()
    while True:
        at.run()
        if cond(at):
            return at
        if time.time() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(pause)


def text_of(md: str) -> str:
    """What the browser shows for a message written with ``flowlab.schema.plain`` (escapes and word joiners off)."""
    return re.sub(r"\\(.)", r"\1", md.replace("\u2060", ""))


def can_link(md: str) -> bool:
    """Whether markdown ``md`` could render a link, autolink, image or HTML: outside its code spans, an unescaped
    '[', '<' or '!', or an address Streamlit would autolink (www., ://, @)."""
    outside = re.sub(r"(`+) ?.*? ?\1", "", md)
    return bool(re.search(r"(?<!\\)[\[<!]|www\.|://|(?<!\u2060\\)@", outside))
