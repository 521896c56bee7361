"""AppTest for the Timing page: recorded runs render, a tiny live run shows progress, results and downloads, a link
presets the grid and the settings (and the page writes its settings back to the link), and bad input gives one
sentence instead of a traceback.  (Named test_timing_page.py: tests/test_timing.py tests flowlab/timing.py.)"""
import os
import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from flowlab import presets
from flowlab.benchmark import load_recorded, newest_per_platform
from flowlab.settings import TIMING

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = os.path.join(ROOT, "pages", "timing.py")
RECORDED = os.path.join(ROOT, "assets", "benchmarks")


def seen(text: str) -> str:
    """A message as the reader sees it: the page escapes markdown in echoed values (backslashes, invisible word
    joiners), which the AppTest returns as source."""
    return re.sub(r"\\(.)", r"\1", text).replace("\u2060", "")


def _fresh():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _wait(at, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        w = at.session_state["tm_worker"]
        if not w.alive:
            break
        time.sleep(0.3)
        at.run()
    at.run()
    assert not at.exception, at.exception
    return at


def _has_recorded():
    return bool(load_recorded(RECORDED))


def test_page_renders_with_controls():
    at = _fresh()
    assert at.title[0].value == "Timing"
    assert at.text_input(key="tm_dims").value == "32, 64, 128, 256, 512"
    assert at.multiselect(key="tm_methods").value == ["relative", "self_normalizing", "exact", "inverse"]
    assert not at.button(key="tm_run").disabled and at.button(key="tm_cancel").disabled
    assert not at.error


@pytest.mark.skipif(not _has_recorded(), reason="no recorded benchmark in assets/benchmarks yet")
def test_recorded_run_is_shown_without_running():
    at = _fresh()
    want = newest_per_platform([(p.name, r) for p, r in load_recorded(RECORDED)])
    assert at.multiselect(key="tm_show").value == want, "the newest recorded run of each platform is shown"
    keys = {c.key for c in at.get("plotly_chart")}
    assert {"tm_fig_time", "tm_fig_speedup", "tm_fig_memory"} <= keys
    assert any(c.value.startswith("**Recorded:**") for c in at.caption)
    assert any(m.label.startswith("relative vs exact at D =") and m.label.endswith("(recorded)") for m in at.metric)


def test_tiny_live_run_shows_results_and_downloads():
    at = _fresh()
    at.multiselect(key="tm_show").set_value([])
    at.text_input(key="tm_dims").set_value("4, 8")
    at.multiselect(key="tm_methods").set_value(["relative", "exact"])
    at.number_input(key="tm_batch").set_value(10)
    at.number_input(key="tm_repeats").set_value(2)
    at.run()
    at.button(key="tm_run").click().run()
    assert not at.exception, at.exception
    assert at.button(key="tm_run").disabled or not at.session_state["tm_worker"].alive
    _wait(at)
    assert not at.error
    assert {"tm_fig_time", "tm_fig_speedup", "tm_fig_memory"} <= {c.key for c in at.get("plotly_chart")}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["relative vs exact at D = 8 (live)"].endswith("× faster")
    assert {b.label for b in at.get("download_button")} == {"CSV", "JSON"}
    assert {b.proto.icon for b in at.get("download_button")} == {":material/download:"}
    assert any(c.value.startswith("**Live:**") and "load average" in c.value for c in at.caption)
    res = at.session_state["tm_worker"].snapshot()["result"]
    assert [(p.dim, p.method, p.status) for p in res.points] == [(4, "relative", "ok"), (4, "exact", "ok"),
                                                                 (8, "relative", "ok"), (8, "exact", "ok")]
    assert not at.button(key="tm_run").disabled and at.button(key="tm_cancel").disabled


def test_cancel_stops_the_run():
    at = _fresh()
    at.text_input(key="tm_dims").set_value("4, 8, 16, 32, 64, 128")
    at.multiselect(key="tm_methods").set_value(["relative"])
    at.number_input(key="tm_batch").set_value(10)
    at.run()
    at.button(key="tm_run").click().run()
    at.button(key="tm_cancel").click().run()
    _wait(at)
    snap = at.session_state["tm_worker"].snapshot()
    assert snap["cancelled"] and snap["done"] < snap["total"]
    assert any("cancelled" in (p.proto.text or "") for p in at.get("progress")) or snap["done"] == 0


@pytest.mark.parametrize("dims, methods, msg", [("64, abc", None, "not a whole number"),
                                                ("3, 100000", None, "out of range"),
                                                ("64", [], "at least one gradient method")])
def test_bad_input_gives_a_sentence(dims, methods, msg):
    at = _fresh()
    at.text_input(key="tm_dims").set_value(dims)
    if methods is not None:
        at.multiselect(key="tm_methods").set_value(methods)
    at.run()
    assert not at.exception
    assert any(msg in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="tm_run").disabled


def test_link_presets_grid_and_methods():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["dims"] = "64,128,256,512"
    at.query_params["methods"] = "exact,inverse,relative"
    at.run()
    assert at.text_input(key="tm_dims").value == "64, 128, 256, 512"
    assert at.multiselect(key="tm_methods").value == ["relative", "exact", "inverse"]
    assert at.selectbox(key="tm_preset").value == "custom"


def test_bad_link_is_a_warning():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["dims"] = "64,lots"
    at.run()
    assert not at.exception
    assert any("Ignored dims=" in seen(w.value) for w in at.warning)
    assert at.text_input(key="tm_dims").value == "32, 64, 128, 256, 512"


def test_preset_fills_the_grid():
    at = _fresh()
    at.selectbox(key="tm_preset").set_value("CPU default: 64 – 4096").run()
    assert at.text_input(key="tm_dims").value.startswith("64, 88, 128") and "4096" in at.text_input(key="tm_dims").value


def test_widgets_take_the_schema_and_the_preset():
    at = _fresh()
    for k in ("batch", "layers", "repeats", "cap"):
        w, kw = at.number_input(key=f"tm_{k}"), TIMING.widget(k)
        assert w.value == presets.TIMING[k] and w.label == kw["label"], k
        assert (w.min, w.max) == (kw["min_value"], kw["max_value"]), k
    assert at.button(key="tm_run").proto.icon == ":material/play_arrow:"
    assert at.button(key="tm_cancel").proto.icon == ":material/stop:"
    assert at.query_params["dims"] == "32,64,128,256,512" and at.query_params["cap"] == "30"


def test_link_sets_every_setting_and_is_written_back():
    at = AppTest.from_file(PAGE, default_timeout=60)
    for k, v in dict(dims="8,4", methods="snf", batch="10", layers="3", repeats="2", cap="1000").items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    assert at.text_input(key="tm_dims").value == "4, 8"
    assert at.multiselect(key="tm_methods").value == ["self_normalizing"]
    assert (at.number_input(key="tm_batch").value, at.number_input(key="tm_layers").value,
            at.number_input(key="tm_repeats").value) == (10, 3, 2)
    assert at.number_input(key="tm_cap").value == TIMING["cap"].hi  # clamped, with a note
    assert any(seen(w.value).startswith("Changed cap='1000'") for w in at.warning)
    assert at.query_params["cap"] == "600" and at.query_params["methods"] == "self_normalizing"
    at.number_input(key="tm_batch").set_value(20).run()
    assert at.query_params["batch"] == "20" and at.text_input(key="tm_dims").value == "4, 8"


# ---- the budget (issue 16) ------------------------------------------------------------------------------------------
@pytest.fixture
def server_budget(monkeypatch):
    monkeypatch.setenv("FLOWLAB_SESSION_MEMORY_MB", "512")
    monkeypatch.setenv("FLOWLAB_JOB_SECONDS", "300")


@pytest.mark.parametrize("query, size", [({"dims": "32768"}, "29 GiB"), ({"dims": "4096", "layers": "64"}, "15 GiB")])
def test_a_grid_that_cannot_run_is_refused(server_budget, query, size):
    at = AppTest.from_file(PAGE, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception and not at.warning
    errors = [seen(e.value) for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Nothing in this grid can run"), errors
    assert f"needs about {size}; this server allows 512 MB per session: use D up to" in errors[0]
    assert at.button(key="tm_run").disabled  # (and _start checks the grid again)
    at.run()
    assert not at.exception and "tm_worker" not in at.session_state


def test_the_grid_estimate_is_shown(server_budget):
    at = _fresh()
    est = [c.value for c in at.caption if c.value.startswith("Estimate:")]
    assert len(est) == 1 and "20 points of 20 points run" in est[0] and "the largest needing about" in est[0]


def test_the_worker_ends_with_its_session(server_budget, monkeypatch):
    import pages._shared.ui as ui

    monkeypatch.setattr(ui, "session_alive", lambda: (lambda: False))  # the browser tab is already closed
    at = _fresh()
    at.text_input(key="tm_dims").set_value("4, 8")
    at.multiselect(key="tm_methods").set_value(["relative"])
    at.run()
    at.button(key="tm_run").click().run()
    _wait(at)
    snap = at.session_state["tm_worker"].snapshot()
    assert snap["finished"] and snap["cancelled"] and snap["done"] == 0
