"""AppTest for the Timing page: recorded runs render, a tiny live run shows progress, results and downloads, a link
presets the grid and the settings (and the page writes its settings back to the link), and bad input gives one
sentence instead of a traceback.  (Named test_timing_page.py: tests/test_timing.py tests flowlab/timing.py.)"""
import os
import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from flowlab import benchmark as B
from flowlab import presets
from flowlab.benchmark import load_recorded, newest_per_platform
from flowlab.settings import TIMING
from flowlab.system import platform_name

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = os.path.join(ROOT, "pages", "timing.py")
RECORDED = os.path.join(ROOT, "assets", "benchmarks")
LIVE_DIMS = B.dims_text(presets.TIMING_LIVE_DIMS)  # the live default grid, D ≥ 512


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
    assert at.text_input(key="tm_dims").value == LIVE_DIMS and min(presets.TIMING_LIVE_DIMS) >= 512
    assert at.multiselect(key="tm_methods").value == list(presets.TIMING["methods"]) == ["relative", "exact"]
    assert not at.button(key="tm_run").disabled and at.button(key="tm_cancel").disabled
    assert not at.error


@pytest.mark.skipif(not _has_recorded(), reason="no recorded benchmark in assets/benchmarks yet")
def test_recorded_run_is_shown_without_running():
    at = _fresh()
    want = newest_per_platform([(p.name, r) for p, r in load_recorded(RECORDED)])
    assert at.multiselect(key="tm_show").value == want, "the newest recorded run of each platform is shown"
    keys = {c.key for c in at.get("plotly_chart")}
    assert {"tm_fig_pair", "tm_fig_time", "tm_fig_speedup", "tm_fig_memory"} <= keys
    assert any(c.value.startswith("**Recorded:**") for c in at.caption)
    assert any(seen(c.value).startswith("Headline from the recorded run") for c in at.caption)
    first = at.metric[0]
    assert first.label.startswith("relative vs exact, D =") and "(recorded run)" in first.proto.help
    # the headline is computed from the recorded file on the page, with its repeats' spread next to it
    runs = dict((p.name, r) for p, r in load_recorded(RECORDED))
    rec = B.choose_headline(None, [runs[n] for n in want], platform_name()).run
    d, ratio = rec.speedups()["relative"]
    assert first.value == f"{ratio[-1]:.1f}× faster" and first.label.endswith(f"D = {int(d[-1])}")
    assert any(B.stability(rec).spread_text() in c.value for c in at.caption)


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
    assert {"tm_fig_pair", "tm_fig_time", "tm_fig_speedup", "tm_fig_memory"} <= {c.key for c in at.get("plotly_chart")}
    # two repeats at D = 4 and 8 are not stable: the recorded headline stays (or, with none, a warning says why)
    kept = [seen(i.value) for i in at.info] + [seen(w.value) for w in at.warning]
    assert len(kept) == 1 and "the live run is not stable (" in kept[0].lower(), kept
    assert "relative has 0 D in [512, 4096], the slope needs 3" in kept[0]
    live_help = at.metric[0].proto.help
    if _has_recorded():
        assert kept[0].startswith("Headline kept from the recorded run") and "(recorded run)" in live_help
    else:
        assert at.metric[0].label == "relative vs exact, D = 8" and "(live run)" in live_help
    assert any("**live run**" in c.value and "at D = 8" in c.value for c in at.caption) or not _has_recorded()
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
    assert at.text_input(key="tm_dims").value == LIVE_DIMS


def test_preset_fills_the_grid():
    at = _fresh()
    name = next(n for n, dims in B.GRIDS.items() if dims == B.default_dims(B.default_max_dim("cpu")))
    assert name == "recorded CPU: 64 – 4096"
    at.selectbox(key="tm_preset").set_value(name).run()
    assert at.text_input(key="tm_dims").value.startswith("64, 88, 128") and "4096" in at.text_input(key="tm_dims").value


def test_widgets_take_the_schema_and_the_preset():
    at = _fresh()
    for k in ("batch", "layers", "repeats", "cap"):
        w, kw = at.number_input(key=f"tm_{k}"), TIMING.widget(k)
        assert w.value == presets.TIMING[k] and w.label == kw["label"], k
        assert (w.min, w.max) == (kw["min_value"], kw["max_value"]), k
    assert at.button(key="tm_run").proto.icon == ":material/play_arrow:"
    assert at.button(key="tm_cancel").proto.icon == ":material/stop:"
    assert at.query_params["dims"] == ",".join(map(str, presets.TIMING_LIVE_DIMS)) and at.query_params["cap"] == "30"


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


ALL4 = "relative,self_normalizing,exact,inverse"  # with SNF in the grid, every point holds R too


@pytest.mark.parametrize("query, size", [({"dims": "32768", "methods": ALL4}, "29 GiB"),
                                         ({"dims": "4096", "layers": "64", "methods": ALL4}, "15 GiB")])
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
    n = len(presets.TIMING_LIVE_DIMS) * len(presets.TIMING["methods"])  # the whole default grid fits 512 MB
    assert len(est) == 1 and f"{n} points of {n} points run" in est[0] and "the largest needing about" in est[0]


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


# ---- which run heads the page (issue 17): a finished live run given to the page, no measuring ------------------------
class FinishedWorker:
    """What the page sees of a BenchmarkWorker whose run has ended with ``result``."""

    alive = False

    def __init__(self, result):
        self.result = result

    def snapshot(self):
        res = B.BenchResult(dict(self.result.meta), list(self.result.points))
        n = len(res.points)
        return dict(result=res, done=n, total=n, current=None, finished=True, cancelled=False, waiting=False,
                    error=None)

    def cancel(self):
        pass


def _synthetic(load):
    """A live-grid run, relative ∝ D² and exact ∝ D³, five repeats within ±3 %, started at ``load`` on 2 cores."""
    pts = [B.Point(m, d, "ok", time_s=t, times_s=[t * f for f in (0.97, 0.99, 1.0, 1.01, 1.03)])
           for d in presets.TIMING_LIVE_DIMS for m, t in (("relative", 1e-9 * d ** 2), ("exact", 2e-11 * d ** 3))]
    meta = {"methods": ["relative", "exact"], "fit_range": list(presets.TIMING_FIT_RANGE), "platform": platform_name(),
            "load_average_start": [load, 0, 0], "threads": {"affinity_cpus": 2}, "date": "2026-11-30T10:00:00"}
    return B.BenchResult(meta, pts)


def test_a_stable_live_run_replaces_the_headline():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["tm_worker"] = FinishedWorker(_synthetic(load=0.5))
    at.run()
    assert not at.exception and not at.error and not at.warning and not at.info
    assert "Headline from the live run: it is stable by the rule below." in [seen(c.value) for c in at.caption]
    first = at.metric[0]
    d = presets.TIMING_LIVE_DIMS[-1]
    assert (first.label, first.value) == (f"relative vs exact, D = {d}", f"{0.02 * d:.1f}× faster")
    assert "(live run)" in first.proto.help
    assert {m.value for m in at.metric[1:]} == {"2.00", "3.00"}  # the slopes of D² and D³
    assert {b.label for b in at.get("download_button")} == {"CSV", "JSON"}


def test_an_unstable_live_run_keeps_the_recorded_headline_and_says_why():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["tm_worker"] = FinishedWorker(_synthetic(load=11.0))
    at.run()
    assert not at.exception and not at.error
    notes = [seen(i.value) for i in at.info] + [seen(w.value) for w in at.warning]
    assert len(notes) == 1 and "the machine was busy, load average 11.0 at the start on 2 cores" in notes[0], notes
    if _has_recorded():
        assert notes[0].startswith("Headline kept from the recorded run") and at.info
        assert "(recorded run)" in at.metric[0].proto.help
        live_spread = B.stability(_synthetic(load=11.0)).spread_text()
        assert any(f"**live run**: {live_spread}" in c.value for c in at.caption)  # its repeats, shown beside
    else:
        assert notes[0].endswith("its figures are not a conclusion.") and at.warning
