"""Timing: the cost of one gradient evaluation against the dimension D, measured live on this machine next to the
recorded runs in assets/benchmarks/ (Gresele et al. 2020 Fig. 1 left; Keller et al. 2021 Fig. 4).

Thin page: widgets -> flowlab.benchmark.BenchmarkWorker (a background thread, polled by a fragment, so neither this
session nor any other freezes) -> flowlab.plots.timing figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from flowlab import benchmark as B
from flowlab.gradients import LABELS
from flowlab.plots import timing as P

RECORDED_DIR = Path(__file__).resolve().parents[1] / "assets" / "benchmarks"
POLL_S = 0.75  # seconds between progress redraws while a run is going
PRESETS = {"quick: 32 – 512": B.default_dims(512, 32, 1), "CPU default: 64 – 4096": B.default_dims(4096, 64, 2),
           "large: 128 – 16384 (GPU)": B.default_dims(16384, 128, 1), "custom": None}
ss = st.session_state

if getattr(PagesManager, "uses_pages_directory", False):  # deep link on a fresh server: let app.py route it
    PagesManager.uses_pages_directory = False
    st.rerun()


# ---- state -----------------------------------------------------------------------------------------------------------
def _dims_text(dims) -> str:
    return ", ".join(str(d) for d in dims)


def _init_from_url():
    """Seed the widgets from ?dims=..&methods=.. (links from the Learn page) on a fresh session or a changed URL."""
    q = {k: v for k, v in st.query_params.to_dict().items() if k in ("dims", "methods")}
    if "tm_dims" in ss and q == ss.get("tm_seen_query"):
        return
    ss["tm_seen_query"] = q
    ss.setdefault("tm_dims", _dims_text(PRESETS["quick: 32 – 512"]))
    ss.setdefault("tm_preset", "quick: 32 – 512")
    ss.setdefault("tm_methods", ["relative", "self_normalizing", "exact", "inverse"])
    notes = []
    if "dims" in q:
        try:
            ss["tm_dims"] = _dims_text(B.parse_dims(q["dims"]))
            ss["tm_preset"] = next((k for k, v in PRESETS.items() if v and _dims_text(v) == ss["tm_dims"]), "custom")
        except ValueError as e:
            notes.append(f"The link's dims were ignored: {e}")
    if "methods" in q:
        try:
            ss["tm_methods"] = list(B.parse_methods(q["methods"]))
        except ValueError as e:
            notes.append(f"The link's methods were ignored: {e}")
    ss["tm_url_notes"] = notes


def _apply_preset():
    dims = PRESETS.get(ss["tm_preset"])
    if dims:
        ss["tm_dims"] = _dims_text(dims)


def _config() -> B.BenchConfig:
    return B.BenchConfig(dims=ss["tm_dims"], methods=ss["tm_methods"], batch=ss["tm_batch"], layers=ss["tm_layers"],
                         repeats=ss["tm_repeats"], cap_s=ss["tm_cap"])


def _start():
    ss["tm_msg"] = None
    try:
        config = _config()
    except ValueError as e:
        ss["tm_msg"] = str(e)
        return
    old = ss.get("tm_worker")
    if old is not None:
        old.cancel()
    ss["tm_worker"] = B.BenchmarkWorker(config, note="live run from the Timing page").start()


def _cancel():
    w = ss.get("tm_worker")
    if w is not None:
        w.cancel()


@st.cache_data(show_spinner=False, ttl=60)
def _recorded(stamp: tuple) -> list:
    return [(p.name, r) for p, r in B.load_recorded(RECORDED_DIR)]


def _recorded_runs() -> list:
    files = sorted(RECORDED_DIR.glob("*.json")) if RECORDED_DIR.is_dir() else []
    return _recorded(tuple((f.name, f.stat().st_mtime) for f in files))


# ---- page ------------------------------------------------------------------------------------------------------------
st.title("Timing")
st.caption("How the cost of one gradient evaluation (forward + backward) grows with the dimension D of a fully "
           "connected flow. The exact gradient of log|det W| needs an LU factorisation or an inverse, O(D³) per "
           "layer; the relative gradient (Gresele et al. 2020) and self-normalizing flows (Keller et al. 2021) get "
           "by with matrix–vector work, O(B·D²). Measure it here, on this machine.")
_init_from_url()
for note in ss.get("tm_url_notes") or []:
    st.warning(note, icon="🔗")

worker = ss.get("tm_worker")
running = worker is not None and worker.alive

c1, c2, c3 = st.columns([1.2, 2.2, 2.6])
c1.selectbox("Grid of D", list(PRESETS), key="tm_preset", on_change=_apply_preset, disabled=running,
             help="Log-spaced dimensions. The CPU default is the grid of the recorded CPU run.")
c2.text_input("Dimensions D (comma-separated)", key="tm_dims", disabled=running,
              help=f"Whole numbers between {B.MIN_DIM} and {B.MAX_DIM}.")
c3.multiselect("Gradient methods", list(B.DEFAULT_METHODS), key="tm_methods", format_func=LABELS.get,
               disabled=running)
with st.expander("Measurement settings"):
    s1, s2, s3, s4 = st.columns(4)
    s1.number_input("Batch size B", *B.LIMITS["batch"], value=100, step=10, key="tm_batch", disabled=running)
    s2.number_input("Layers", *B.LIMITS["layers"], value=2, step=1, key="tm_layers", disabled=running)
    s3.number_input("Repeats (median)", *B.LIMITS["repeats"], value=5, step=1, key="tm_repeats", disabled=running)
    s4.number_input("Time cap per point (s)", 0.1, 600.0, value=20.0, step=5.0, key="tm_cap", disabled=running,
                    help="A method whose next point would take longer is stopped and marked; so is one that needs "
                         "more memory than the machine has.")
    st.caption("Each point is compiled first (not timed), called once to warm up, then timed with "
               "`block_until_ready`; the median of the repeats is shown. Dimensions run from small to large, all "
               "methods at one D before the next D. XLA uses all CPU threads; on a busy machine timings are noisy.")

config_error = None
try:
    _config()
except ValueError as e:
    config_error = str(e)
if config_error:
    st.error(config_error)
if ss.get("tm_msg"):
    st.error(ss["tm_msg"])

b1, b2, b3 = st.columns([1, 1, 4])
b1.button("▶ Run", key="tm_run", type="primary", on_click=_start, disabled=running or bool(config_error),
          width="stretch")
b2.button("■ Cancel", key="tm_cancel", on_click=_cancel, disabled=not running, width="stretch",
          help="Stops after the point being measured.")

recorded = _recorded_runs()
labels = {name: f"{r.label}  ({name})" for name, r in recorded}
b3.multiselect("Recorded runs to show", list(labels), default=B.newest_per_platform(recorded), key="tm_show",
               format_func=labels.get, placeholder="none recorded" if not labels else "choose recorded runs")


def _headline(run: B.BenchResult, where: str):
    """Speed-up of relative over exact at the largest common D, and the fitted slopes."""
    sp = run.speedups()
    slopes = run.slopes()
    m = st.columns(3)
    d, r = sp.get("relative", ([], []))
    if len(d):
        m[0].metric(f"relative vs exact at D = {int(d[-1])} ({where})", f"{r[-1]:.1f}× faster",
                    help="t(exact) / t(relative) at the largest D where both were measured")
    else:
        m[0].metric(f"relative vs exact ({where})", "—", help="needs both methods measured at the same D")
    for col, meth in ((m[1], "relative"), (m[2], "exact")):
        s = slopes.get(meth)
        if s is None:
            col.metric(f"slope of {meth}", "—")
            continue
        lo, hi = s["window_range"]
        if np.isfinite(s["window"]):
            col.metric(f"slope of {meth}, D∈[{lo:g}, {hi:g}]", f"{s['window']:.2f}")
        else:
            col.metric(f"slope of {meth} (larger half of D)", "—" if not np.isfinite(s["upper"]) else
                       f"{s['upper']:.2f}")


def _run_caption(run: B.BenchResult) -> str:
    m = run.meta
    thr = (m.get("threads") or {}).get("xla_threads", "?")
    load = m.get("load_average_start")
    return (f"{m.get('device', '?')} · JAX {m.get('jax', '?')} · {str(m.get('date', '?'))[:16].replace('T', ' ')} · "
            f"batch {m.get('batch')}, {m.get('layers')} layers, float32 · XLA threads: {thr}"
            + (f" · load average at start {load[0]:.2f}" if load else "")
            + (f" · {m['note']}" if m.get("note") else ""))


@st.fragment(run_every=POLL_S if running else None)
def results():
    w = ss.get("tm_worker")
    shown = [r for name, r in recorded if name in (ss.get("tm_show") or [])]
    live = None
    if w is not None:
        snap = w.snapshot()
        live = snap["result"]
        live.meta["live"] = True
        live.meta["label"] = "live run"
        done, total = snap["done"], snap["total"]
        if not snap["finished"]:
            cur = snap["current"]
            what = (f"waiting for another session's benchmark" if snap["waiting"] else
                    f"measuring {LABELS.get(cur[1], cur[1])} at D = {cur[0]}" if cur else "finishing")
            st.progress(done / max(total, 1), text=f"point {min(done + 1, total)} of {total}: {what}…")
        else:
            state = "cancelled" if snap["cancelled"] else "finished"
            st.progress(done / max(total, 1), text=f"live run {state}: {done} of {total} points in "
                                                   f"{live.meta.get('duration_s', 0):.0f} s")
            if ss.get("tm_poll_active"):  # the run just ended: redraw the whole page (buttons, downloads)
                ss["tm_poll_active"] = False
                st.rerun(scope="app")
        if snap["error"]:
            st.error(f"The run stopped on an unexpected error: {snap['error']}")
        ss["tm_poll_active"] = not snap["finished"]
    runs = ([live] if live is not None and live.points else []) + shown
    if not runs:
        st.info("Press **Run** to measure on this machine" + (", or pick a recorded run above." if labels else "."))
        return
    focus = runs[0]
    _headline(focus, "live" if focus is live else "recorded")
    st.plotly_chart(P.time_figure(runs), width="stretch", key="tm_fig_time")
    f1, f2 = st.columns(2)
    f1.plotly_chart(P.speedup_figure(runs), width="stretch", key="tm_fig_speedup")
    f2.plotly_chart(P.memory_figure(runs), width="stretch", key="tm_fig_memory")
    for run in runs:
        st.caption(("**Live:** " if run is live else "**Recorded:** ") + _run_caption(run))
    stopped = focus.stopped()
    if stopped:
        st.caption("Stopped: " + "; ".join(f"{LABELS.get(m, m)} — {s['note']}" for m, s in stopped.items()))
    if live is not None and live.points:
        with st.expander("Live results table", expanded=False):
            st.dataframe(P.results_table(live), hide_index=True, width="stretch")
        if w is not None and not w.alive:
            d1, d2, _ = st.columns([1, 1, 4])
            stamp = str(live.meta.get("date", ""))[:19].replace(":", "")
            d1.download_button("⬇ CSV", live.to_csv(), file_name=f"flowlab_timing_{stamp}.csv", mime="text/csv",
                               key="tm_dl_csv", width="stretch")
            d2.download_button("⬇ JSON", live.to_json(), file_name=f"flowlab_timing_{stamp}.json",
                               mime="application/json", key="tm_dl_json", width="stretch")


results()

with st.expander("About the measurement and the recorded runs"):
    st.markdown(
        "* **What is timed:** one call of the method's gradient function — the forward pass, the backward pass and "
        "the method's own treatment of the log-determinant — for a batch of B rows through L fully connected "
        "layers of size D, in float32. Compilation is excluded.\n"
        "* **Expected slopes** (log time against log D, for large D): about 2 for the relative and "
        "self-normalizing gradients, approaching 3 for the exact (slogdet) and explicit-inverse gradients, and "
        "worse for autodiff of the full per-sample Jacobian (B·D³ work and B·D² memory). At small D, fixed call "
        "overheads flatten every curve.\n"
        "* **Papers:** Gresele et al. (2020) report about 100× for the relative gradient at D = 8192 on a GPU "
        "(Fig. 1 left); Keller et al. (2021, Fig. 4) show the same gap for self-normalizing flows.\n"
        "* **Recorded runs** come from `python -m flowlab bench ... --out assets/benchmarks/<name>.json` and name "
        "their device, versions, date, thread settings and machine load.")
