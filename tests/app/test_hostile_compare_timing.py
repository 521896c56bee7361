"""Hostile links for the Compare and Timing pages (issue 16): huge, negative, NaN, inf, empty, unicode and
100 000-character values, repeated keys, values above the widgets' maxima and the issue's exact links.  Each page
shows short one-line notes or a one-sentence refusal, renders without an exception, allocates nothing large (the
process's peak resident memory, read from /proc, grows by less than ``MAX_GROWTH``), and a refused job never starts.
The pages run in this process (AppTest), so their memory is this process's."""
import os
import re
from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest

from flowlab import compare as C
from flowlab.budget import session_budget
from flowlab.settings import COMPARE, TIMING
from flowlab.system import proc_bytes, rss_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 120
MAX_GROWTH = 300 * 2 ** 20
HOSTILE = ["1e308", "-1", "-1e308", "nan", "inf", "-inf", "", "   ", "🙂", "٣", "Ｄ", "x" * 100_000, "9" * 400, "0x10",
           "1_000", "None", "[1, 2]", "<b>x</b>", "javascript:alert(1)", "%00", "1,2,3", "\u202e12"]
ISSUE_LINKS = ["density=gaussian_mixture_nd&dim=128&layers=20&inits=20&points=20000",
               "density=gaussian_mixture_nd&dim=512&layers=50&inits=20&points=20000"]
TIMING_LINKS = ["dims=32768", "dims=4096&layers=64", "dims=65536&batch=100000&layers=64",
                "dims=" + ",".join(str(d) for d in range(2, 3000, 7))]


@pytest.fixture(autouse=True)
def server_budget(monkeypatch):
    monkeypatch.setenv("FLOWLAB_SESSION_MEMORY_MB", "512")
    monkeypatch.setenv("FLOWLAB_JOB_SECONDS", "300")


# ---- memory of this process ------------------------------------------------------------------------------------------
def rss() -> int:
    """Resident bytes now."""
    return rss_bytes()


def reset_peak() -> bool:
    """Restart the kernel's resident-memory high-water mark (VmHWM) from now; False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak() -> int:
    """The resident-memory high-water mark (VmHWM) since the last ``reset_peak``."""
    return proc_bytes("/proc/self/status", "VmHWM") or rss()


@pytest.fixture
def bounded_memory():
    """Whatever the test does, the process's resident memory (its peak where the kernel lets us reset it) stays
    within MAX_GROWTH of where it started."""
    before = rss()
    has_peak = reset_peak()
    yield
    after = peak() if has_peak else rss()
    assert after - before < MAX_GROWTH, f"grew by {(after - before) / 2 ** 20:.0f} MB"


# ---- pages -------------------------------------------------------------------------------------------------------------
def seen(text: str) -> str:
    """A message as the reader sees it (markdown escapes and invisible word joiners removed)."""
    return re.sub(r"\\(.)", r"\1", text).replace("\u2060", "")


def open_page(name: str, query: dict) -> AppTest:
    at = AppTest.from_file(os.path.join(ROOT, "pages", f"{name}.py"), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def messages_are_short(at):
    """The page rendered (title, no exception) and every note or error is one short line, never a traceback."""
    assert not at.exception, [e.value for e in at.exception]
    assert at.title
    for box in list(at.warning) + list(at.error):
        text = seen(box.value)
        assert "\n" not in text and len(text) < 600 and "Traceback" not in text, text[:300]


def compare_settings(at):
    return C.CompareSettings(**{k: at.session_state[f"cmp_{k}"] for k in COMPARE.keys})


def compare_is_consistent(at):
    """Run is disabled exactly when the settings shown do not fit; the refusal is one sentence; no job exists."""
    messages_are_short(at)
    refusal = C.refusal_text(compare_settings(at), session_budget())
    assert at.button(key="cmp_run_btn").disabled == (refusal is not None)
    if refusal:
        assert refusal in [seen(e.value) for e in at.error]
        assert refusal.endswith(".") and refusal.count(". ") == 0
    assert "cmp_job" not in at.session_state and "cmp_sweep" not in at.session_state


def timing_is_consistent(at):
    messages_are_short(at)
    refused = [seen(e.value) for e in at.error if seen(e.value).startswith(("Nothing in this grid", "This run needs"))]
    assert at.button(key="tm_run").disabled == bool(refused)
    for text in refused:
        assert text.endswith(".") and text.count(". ") == 0
    assert "tm_worker" not in at.session_state


# ---- Compare -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:12]))
def test_compare_every_key_hostile(bounded_memory, value):
    at = open_page("compare", {k: value for k in COMPARE.query_keys})
    compare_is_consistent(at)


@pytest.mark.parametrize("key", [k for k in COMPARE.query_keys  # numbers with a maximum (a text's hi is a length)
                                 if COMPARE[k if k != "opt" else "optimizer"].hi
                                 and COMPARE[k if k != "opt" else "optimizer"].kind != "str"])
def test_compare_above_every_maximum(bounded_memory, key):
    f = COMPARE[key if key != "opt" else "optimizer"]
    at = open_page("compare", {key: str(f.hi * 10 + 1)})
    compare_is_consistent(at)
    notes = [seen(w.value) for w in at.warning]
    assert any(n.startswith(f"Changed {key}=") for n in notes), notes


def test_compare_repeated_keys(bounded_memory):
    at = open_page("compare", {"inits": ["2", "999"], "dim": ["2", "600", "abc"], "density": ["moons", "unicorn"],
                               "points": ["20000", "20000"]})
    compare_is_consistent(at)


@pytest.mark.parametrize("link", ISSUE_LINKS)
def test_compare_issue_links_are_refused(bounded_memory, link):
    at = open_page("compare", {k: v[-1] for k, v in parse_qs(link).items()})
    compare_is_consistent(at)
    assert not at.warning  # every value is inside the limits: only the estimate refuses it
    first = seen(at.error[0].value)
    assert first.startswith("This run needs about") and "GiB" in first and "512 MB per session" in first
    assert at.button(key="cmp_run_btn").disabled and at.button(key="cmp_sweep_btn").disabled


def test_compare_renders_after_the_fuzz(bounded_memory):
    open_page("compare", {k: "x" * 100_000 for k in COMPARE.query_keys})
    at = open_page("compare", {})
    compare_is_consistent(at)
    assert not at.warning and not at.error and not at.button(key="cmp_run_btn").disabled


# ---- Timing ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:12]))
def test_timing_every_key_hostile(bounded_memory, value):
    at = open_page("timing", {k: value for k in TIMING.query_keys})
    timing_is_consistent(at)


@pytest.mark.parametrize("link", TIMING_LINKS, ids=lambda v: v[:40])
def test_timing_links_that_cannot_run_are_refused(bounded_memory, link):
    at = open_page("timing", {k: v[-1] for k, v in parse_qs(link).items()})
    timing_is_consistent(at)
    refused = [seen(e.value) for e in at.error]
    if link.startswith("dims=2,"):  # a long grid: clamped to its first 40 dimensions, a few of which run
        assert any(seen(w.value).startswith("Changed dims=") for w in at.warning)
        return
    assert len(refused) == 1 and refused[0].startswith("Nothing in this grid can run") and "GiB" in refused[0]


@pytest.mark.parametrize("key", [k for k in TIMING.query_keys if TIMING[k].hi])
def test_timing_above_every_maximum(bounded_memory, key):
    at = open_page("timing", {key: str(int(TIMING[key].hi) * 10 + 1)})
    timing_is_consistent(at)
    assert any(seen(w.value).startswith(f"Changed {key}=") for w in at.warning)


def test_timing_repeated_keys_and_render_after(bounded_memory):
    at = open_page("timing", {"dims": ["64", "32768"], "layers": ["2", "64", "x"], "methods": ["exact", "magic"]})
    timing_is_consistent(at)
    at = open_page("timing", {})
    timing_is_consistent(at)
    assert not at.error and not at.button(key="tm_run").disabled


def test_compare_every_maximum_at_once_is_refused(bounded_memory):
    at = open_page("compare", {k: "1e308" for k in COMPARE.query_keys})
    compare_is_consistent(at)
    s = compare_settings(at)
    assert (s.inits, s.points, s.iters, s.layers) == (20, 20000, 20000, 50)  # clamped, each with a note
    assert at.button(key="cmp_run_btn").disabled and at.button(key="cmp_sweep_btn").disabled


def test_timing_a_grid_partly_too_big_runs_without_building_the_huge_point(bounded_memory):
    """Run is allowed (D = 8 fits); D = 32 768 is marked too big from its size, and the process never holds its
    ~29 GiB of inputs (the peak stays within MAX_GROWTH)."""
    at = open_page("timing", {"dims": "8,32768", "methods": "relative", "batch": "10", "repeats": "1"})
    timing_is_consistent(at)
    assert not at.button(key="tm_run").disabled
    at.button(key="tm_run").click().run()
    w = at.session_state["tm_worker"]
    w.thread.join(60)
    at.run()
    assert not at.exception
    res = w.snapshot()["result"]
    assert [(p.dim, p.status) for p in res.points] == [(8, "ok"), (32768, "too_big")]
    assert "estimated before building it" in res.points[1].note and "512 MB limit" in res.points[1].note
