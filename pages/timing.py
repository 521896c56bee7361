"""Timing: the cost of one gradient evaluation against the dimension D, measured live on this machine next to the
recorded runs in assets/benchmarks/ (Gresele et al. 2020 Fig. 1 left; Keller et al. 2021 Fig. 4).

Thin page: widgets (settings.TIMING) -> flowlab.benchmark.BenchmarkWorker (a background thread; it ends with the
browser session) -> flowlab.plots.timing figures and flowlab.benchmark's headline.  While a run measures, nothing is
redrawn but one progress line every PROGRESS_S seconds (drawing figures would take CPU from the timed code); the
figures come back when it ends.  The headline stays with the recorded run unless the live run is stable
(flowlab.benchmark.stability).  The grid is estimated against the session's budget (flowlab.budget) before it runs:
a grid that cannot run is refused with one sentence, and each point is guarded before its inputs exist."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from flowlab import benchmark as B
from flowlab import settings
from flowlab.budget import duration_text, plural, session_budget, size_text
from flowlab.gradients import by_cost
from flowlab.plots import timing as P
from flowlab.settings import TIMING
from flowlab.system import platform_name
from pages._shared.ui import WARN, page_setup, session_alive, sync_query, url_notes

page_setup()

RECORDED_DIR = Path(__file__).resolve().parents[1] / "assets" / "benchmarks"
PROGRESS_S = 2.0  # seconds between updates of the progress line while a run measures (the only redraw then)
W = {k: f"tm_{k}" for k in TIMING.keys if TIMING[k].query_key}  # the seed has no widget: the preset's
PLAY, STOP, DOWNLOAD, INFO = ":material/play_arrow:", ":material/stop:", ":material/download:", ":material/info:"
ss = st.session_state


# ---- state -----------------------------------------------------------------------------------------------------------
def _query() -> dict:
    return {k: v for k, v in st.query_params.to_dict().items() if k in TIMING.query_keys}


def _load_url_settings():
    """A fresh session or a changed link (e.g. from the Learn page): seed the widgets from the URL (a bad value falls
    back to the preset, one above a maximum is clamped; each with a visible note)."""
    q = _query()
    if W["dims"] in ss and q == ss.get("tm_seen_query"):
        return
    settings, notes = TIMING.parse_query(q)
    for k, key in W.items():
        ss[key] = B.dims_text(settings[k]) if k == "dims" else list(settings[k]) if k == "methods" else settings[k]
    ss["tm_preset"] = B.grid_name(settings["dims"])
    ss["tm_seen_query"], ss["tm_url_notes"] = q, notes


def _apply_preset():
    dims = B.GRIDS.get(ss["tm_preset"])
    if dims:
        ss[W["dims"]] = B.dims_text(dims)


def _config() -> B.BenchConfig:
    return B.BenchConfig(**{k: ss[key] for k, key in W.items()})


def _start():
    ss["tm_msg"] = None
    budget = session_budget()
    try:
        config = _config()
    except ValueError as e:
        ss["tm_msg"] = str(e)
        return
    refused = B.grid_refusal(config, budget)
    if refused:
        ss["tm_msg"] = refused
        return
    old = ss.get("tm_worker")
    if old is not None:
        old.cancel()
    # started at the end of this script run, once the page (figures included) is drawn: no drawing while it measures
    ss["tm_worker"] = B.BenchmarkWorker(config, alive=session_alive(), mem_limit=budget.memory,
                                        time_limit=budget.seconds, note="live run from the Timing page")
    ss["tm_pending"] = True


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
           "by with matrix–vector work, O(B·D²). The recorded runs below show it; **Run** measures it on this machine.")
_load_url_settings()
url_notes(ss.get("tm_url_notes"))

worker = ss.get("tm_worker")
running = worker is not None and (worker.alive or bool(ss.get("tm_pending")))

c1, c2 = st.columns([1, 1.8])  # the methods get a row of their own: their labels are long
c1.selectbox("Grid of D", [*B.GRIDS, B.CUSTOM], key="tm_preset", on_change=_apply_preset, disabled=running,
             help="Log-spaced dimensions. The live default starts at D = 512, where the fixed call overheads no "
                  "longer decide, and ends where the exact gradient still fits this server's memory per session.")
c2.text_input(**TIMING.widget("dims"),
              key=W["dims"], disabled=running)
methods_kw = TIMING.widget("methods")
st.multiselect(**{**methods_kw, "options": list(by_cost(methods_kw["options"]))}, key=W["methods"],
               disabled=running)
with st.expander("Measurement settings"):
    for col, k in zip(st.columns(4), ("batch", "layers", "repeats", "cap")):
        col.number_input(**TIMING.widget(k), key=W[k], disabled=running)
    st.caption("Each point is compiled first (not timed), called once to warm up, then timed with "
               "`block_until_ready`; the median of the repeats is shown, the middle half of them as error bars. "
               "Dimensions run from small to large, all methods at one D before the next D. XLA uses all CPU "
               "threads; on a busy machine timings are noisy.")

try:
    config, config_error = _config(), None
except ValueError as e:
    config, config_error = None, str(e)
budget = session_budget()
refused = None
if config is not None:
    query = TIMING.dump_query(config.settings())
    sync_query(query)
    ss["tm_seen_query"] = query
    refused = B.grid_refusal(config, budget)
    if not refused:
        est = B.grid_estimate(config, budget.memory)
        stops = [f"{plural(n, 'method')} {why}" for n, why in (
            (est.too_big, f"at a D too big for this session's {size_text(budget.memory)}"),
            (est.too_slow, f"at a D too slow for the {config.cap:g} s cap")) if n]
        st.caption(f"Estimate: {plural(est.runs, 'point')} of {plural(len(config.dims) * len(config.methods), 'point')}"
                   f" run, in up to about {duration_text(est.seconds)}, the largest needing about "
                   f"{size_text(est.peak_bytes)}" + (f"; {' and '.join(stops)} will stop there" if stops else "")
                   + ".")
if config_error:
    st.error(config_error)
if refused:
    st.error(refused, icon=WARN)
if ss.get("tm_msg"):
    st.error(ss["tm_msg"])

b1, b2, _ = st.columns([1, 1.25, 3.75])
b1.button("Run", icon=PLAY, key="tm_run", type="primary", on_click=_start,
          disabled=running or bool(config_error) or bool(refused), width="stretch")
b2.button("Cancel", icon=STOP, key="tm_cancel", on_click=_cancel, disabled=not running, width="stretch",
          help="Stops after the point being measured.")

recorded = _recorded_runs()
names = [r.label for _, r in recorded]  # a run's label, with its file name only where two labels are alike
labels = {name: r.label if names.count(r.label) == 1 else f"{r.label}  ({name})" for name, r in recorded}
st.multiselect("Recorded runs to show", list(labels), default=B.newest_per_platform(recorded), key="tm_show",
               format_func=labels.get, placeholder="none recorded" if not labels else "choose recorded runs",
               disabled=running)


@st.fragment(run_every=PROGRESS_S)
def progress_line():
    """While a run measures: only this line is redrawn; when the run ends, the whole page (figures, headline)."""
    snap = ss["tm_worker"].snapshot()
    if snap["finished"] and not ss.get("tm_pending"):
        st.rerun(scope="app")
    st.progress(*B.progress(snap))
    st.caption("The figures wait for the end of the run: drawing them now would take CPU from the timed code.")


def live_result():
    """The live run once it has ended (None while it measures or before any), marked as live."""
    w = ss.get("tm_worker")
    if w is None or running:
        return None
    snap = w.snapshot()
    if snap["error"]:
        st.error(f"The run stopped on an unexpected error: {snap['error']}")
    st.progress(*B.progress(snap))
    live = snap["result"]
    live.meta.update(live=True, label="live run")
    return live if live.points else None


def headline_note(choice):
    """Say where the headline comes from: quietly when nothing contradicts it, as a notice when a live run was not
    stable enough to replace the recorded one (with its reasons), as a warning when an unstable live run is all
    there is."""
    why = settings.plain(choice.why)
    if choice.source == "live" and not choice.check.stable:
        st.warning(why, icon=WARN)
    elif choice.check is not None and choice.source == "recorded":
        st.info(why, icon=INFO)
    else:
        st.caption(why)


def spread_note(choice, live):
    """The headline run's figures from the medians with the middle half of the repeats in brackets, and the live
    run's when it is not the headline (so a student sees how far apart its repeats were)."""
    focus = choice.run
    parts = [(f"**{'live' if focus is live else 'recorded'} run (headline)**", B.stability(focus).spread_text())]
    if live is not None and focus is not live:
        parts.append(("**live run**", choice.check.spread_text()))
    parts = [f"{who}: {text}" for who, text in parts if text]
    if parts:
        st.caption("Median, and in brackets the range over the middle half of the repeats (25th–75th percentile) — "
                   + "; ".join(parts) + ".")


def results(live):
    """Headline (recorded unless the live run is stable), the two-line chart, every method in an expander, the run
    captions and the live run's table and downloads."""
    shown = [r for name, r in recorded if name in (ss.get("tm_show") or [])]
    # the headline stays with a recorded run even when none is picked to be shown (it is drawn in the chart then)
    choice = B.choose_headline(live, shown or [r for _, r in recorded], platform_name())
    if choice.run is None:
        st.info("Press **Run** to measure on this machine" + (", or pick a recorded run above." if labels else "."))
        return
    focus = choice.run
    headline_note(choice)
    for col, metric in zip(st.columns(3), B.headline(focus, choice.source)):
        col.metric(metric.label, metric.value, help=metric.help)
    spread_note(choice, live)
    pair = [focus] + ([live] if live is not None and live is not focus else [])
    st.plotly_chart(P.pair_figure(pair), width="stretch", key="tm_fig_pair")
    st.caption(B.rule_text(fit_range=tuple(focus.meta.get("fit_range") or B.FIT_RANGE)))
    runs = ([live] if live is not None else []) + shown
    with st.expander("Every method, speed-up and memory", expanded=False):
        t1, t2, t3 = st.tabs(["Time", "Speed-up", "Memory"])  # each figure gets the full width
        t1.plotly_chart(P.time_figure(runs), width="stretch", key="tm_fig_time")
        t2.plotly_chart(P.speedup_figure(runs), width="stretch", key="tm_fig_speedup")
        t3.plotly_chart(P.memory_figure(runs), width="stretch", key="tm_fig_memory")
        for run in runs:
            stopped = B.stopped_caption(run)
            if stopped:
                st.caption(("**Live** " if run is live else f"**{run.label}** ") + stopped[0].lower() + stopped[1:])
    for run in pair + [r for r in runs if all(r is not q for q in pair)]:
        st.caption(("**Live:** " if run is live else "**Recorded:** ") + B.run_caption(run))
    if live is not None:
        with st.expander("Live results table", expanded=False):
            st.dataframe(P.results_table(live), hide_index=True, width="stretch")
        d1, d2, _ = st.columns([1, 1, 4])
        d1.download_button("CSV", live.to_csv(), file_name=B.file_name(live, "csv"), mime="text/csv",
                           icon=DOWNLOAD, key="tm_dl_csv", width="stretch")
        d2.download_button("JSON", live.to_json(), file_name=B.file_name(live, "json"),
                           mime="application/json", icon=DOWNLOAD, key="tm_dl_json", width="stretch")


if running:
    progress_line()
results(live_result())

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

if ss.get("tm_pending"):  # the page is drawn: now the run may take the CPU
    ss["tm_pending"] = False
    ss["tm_worker"].start()
