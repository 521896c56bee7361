"""Compare: ordinary vs relative vs self-normalizing gradients from the same initial weights (Gresele et al. 2020
Fig. 1 right; Keller et al. 2021 Fig. 3 and Table 4), each at every learning rate of a small sweep; the curves at each
method's best rate (or at the shared one) and the conclusion computed from the run.  Widgets -> flowlab.compare jobs ->
flowlab.plots.compare.

A job runs in pieces: while one is running, a fragment tick advances it for a fraction of a second and redraws the
progress bar and the figure; Stop (outside the fragment) cancels between pieces.  Before a job exists its estimate is
checked against the session's budget (flowlab.budget): a run that does not fit is refused with one sentence, and a
job that fails while running ends with one sentence."""
from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import streamlit as st

from flowlab import compare as C
from flowlab import presets
from flowlab.budget import duration_text, error_line, session_budget, size_text
from flowlab.plots.compare import convergence_figure, lambda_figure, rate_figure
from flowlab.settings import COMPARE, COMPARE_ND, COMPARE_TEXT, LAMBDAS, literal, plain
from flowlab.system import platform_name
from pages._shared.ui import WARN, page_setup, sync_query, url_notes

page_setup()

TICK_S = 0.15  # seconds between redraws while a job runs
BUDGET_S = 0.5  # seconds of work per redraw
W = {k: f"cmp_{k}" for k in COMPARE.keys}  # activation, init and eval_every have no widget: kept as the link gave them
TEXT_KEPT = "cmp_text_kept"  # the typed text, kept while its input is hidden (Streamlit drops a hidden widget's state)
PLAY, STOP, DOWNLOAD = ":material/play_arrow:", ":material/stop:", ":material/download:"
FINDING = ":material/insights:"
ss = st.session_state


def _rates_text(rates) -> str:
    return ", ".join(f"{v:g}" for v in rates)


def _load_url_settings():
    """First visit in this session: the link's values (a bad one falls back, one above a maximum is clamped; each
    with a visible note)."""
    if "cmp_loaded" in ss:
        return
    settings, notes = COMPARE.parse_query(st.query_params.to_dict())
    for k, key in W.items():
        ss[key] = list(settings[k]) if k == "methods" else _rates_text(settings[k]) if k == "rates" else settings[k]
    ss[TEXT_KEPT] = settings["text"]
    ss["cmp_url_notes"], ss["cmp_loaded"] = notes, True


def _keep_text():
    ss[TEXT_KEPT] = ss[W["text"]]


def _optimizer_changed():
    ss[W["lr"]] = presets.COMPARE_LR[ss[W["optimizer"]]]
    ss[W["rates"]] = _rates_text(presets.COMPARE_RATES[ss[W["optimizer"]]])


def _start(kind: str, settings, lams=None):
    budget = session_budget()
    try:  # the job checks its estimate against the budget before it makes any array
        job = (C.ConvergenceRun(settings, budget=budget) if kind == "run" else
               C.LambdaSweep(settings, lams, budget=budget))
    except ValueError as e:
        ss["cmp_msg"] = str(e)
        return
    except Exception as e:  # noqa: BLE001 - e.g. an allocation that failed anyway: one sentence, no job
        ss["cmp_msg"] = f"The run could not start: {error_line(e)}."
        return
    ss["cmp_msg"] = None
    ss["cmp_job" if kind == "run" else "cmp_sweep"] = job
    ss["cmp_active"] = kind


def _stop():
    kind = ss.get("cmp_active")
    if kind:
        ss["cmp_job" if kind == "run" else "cmp_sweep"].cancel()
    ss["cmp_active"] = None


# ---- page --------------------------------------------------------------------------------------------------------------
st.title("Compare gradients")
st.caption("Ordinary, relative and self-normalizing gradients trained **from the same initial weights** on the same "
           "full batch — Gresele et al. (2020), Fig. 1 right, and Keller et al. (2021), Fig. 3 and Table 4 — each at "
           "every learning rate of a small sweep, because equal learning rates are not equal steps.")
_load_url_settings()
running = ss.get("cmp_active") is not None

with st.sidebar:
    st.header("Experiment")
    st.selectbox(**COMPARE.widget("density"), key=W["density"], disabled=running)
    if ss[W["density"]] == COMPARE_TEXT:
        ss[W["text"]] = ss[TEXT_KEPT]
        st.text_input(**COMPARE.widget("text"), key=W["text"], disabled=running, on_change=_keep_text)
    nd = ss[W["density"]] == COMPARE_ND
    if not nd and ss[W["dim"]] != 2:
        ss[W["dim"]] = 2  # the toy densities are 2-D
    st.number_input(**COMPARE.widget("dim"), key=W["dim"], disabled=running or not nd)
    st.number_input(**COMPARE.widget("layers"), key=W["layers"], disabled=running)
    st.radio(**COMPARE.widget("optimizer"), key=W["optimizer"], horizontal=True, on_change=_optimizer_changed,
             disabled=running)
    st.number_input(**COMPARE.widget("lr"), key=W["lr"], disabled=running)
    st.text_input(**COMPARE.widget("rates"), key=W["rates"], disabled=running)
    st.slider(**COMPARE.widget("inits"), key=W["inits"], disabled=running)
    st.number_input(**COMPARE.widget("iters"), key=W["iters"], disabled=running)
    st.number_input(**COMPARE.widget("points"), key=W["points"], disabled=running)
    st.multiselect(**COMPARE.widget("methods"), key=W["methods"], disabled=running)
    st.number_input(**COMPARE.widget("lam"), key=W["lam"], disabled=running)
    st.number_input(**COMPARE.widget("seed"), key=W["seed"], disabled=running)
    st.header("Display")
    band_kind = st.radio("Spread over the inits", ["std", "minmax"], key="cmp_band", horizontal=True,
                         format_func=lambda b: "mean ± 1 std" if b == "std" else "min – max")
    st.radio(**COMPARE.widget("curves"), key=W["curves"])
    show_runs = st.checkbox("Show every init", key="cmp_runs")

url_notes(ss.get("cmp_url_notes"))

values = {**{k: ss[key] for k, key in W.items() if k != "text"}, "text": ss[TEXT_KEPT]}
try:
    settings, bad = C.CompareSettings(**values), None
except ValueError as e:
    settings, bad = None, str(e)
budget = session_budget()
too_big = None
if settings is not None:
    sync_query(settings.query())
    too_big = C.refusal_text(settings, budget)
if bad:
    st.error(plain(bad))  # may echo the typed text
if ss.get("cmp_msg"):
    st.error(ss["cmp_msg"])

tab_run, tab_sweep = st.tabs(["Convergence: same start, three gradients", "λ sweep (self-normalizing)"])

with tab_run:
    c1, c2, c3 = st.columns([1, 1, 4])
    c1.button("Run", icon=PLAY, key="cmp_run_btn", type="primary", width="stretch",
              disabled=running or settings is None or too_big is not None, on_click=_start, args=("run", settings))
    c2.button("Stop", icon=STOP, key="cmp_stop_btn", width="stretch", disabled=not running, on_click=_stop)
    if settings is not None:
        cost = C.job_cost(settings)
        c3.caption(f"{len(settings.methods)} methods × {len(settings.grid)} learning rates × {settings.inits} inits "
                   f"× {settings.iters:,} iterations "
                   f"on {settings.points:,} points in D = {settings.dim} · loss evaluated every {settings.every} "
                   f"step(s) · device {platform_name().upper()} · estimated at most {size_text(cost.bytes)} and "
                   f"{duration_text(cost.seconds)} of compute. The first run compiles for a few seconds.")
    if too_big:
        st.error(too_big, icon=WARN)

with tab_sweep:
    st.markdown("Self-normalizing flows with different reconstruction weights λ, all from the same initial weights "
                "(the sidebar's density, layers, optimiser, shared learning rate, inits, iterations and points). "
                "FlowLab's λ is Keller et al.'s (eq. 3: ½(log p_f + log p_g) − λ·reconstruction error), so values "
                "compare directly with theirs; the default here is "
                f"λ = {presets.COMPARE['lam']:g}. In their Table 4 (MNIST), too small a λ let training diverge and "
                "larger λ cost a little likelihood; their data and models differ from these, so the threshold need "
                "not carry over. In the left panel, ✕ k/n counts the inits that failed: diverged (NaN/Inf) or ended "
                "above their starting loss.")
    s1, s2, s3 = st.columns([3, 1, 1])
    lam_text = s1.text_input(LAMBDAS.label, value=", ".join(f"{v:g}" for v in presets.LAMBDA_SWEEP),
                             key="cmp_lams", help=LAMBDAS.help)
    try:
        lams, lam_bad = LAMBDAS.check(lam_text), None
    except ValueError as e:
        lams, lam_bad = None, str(e)
    sweep_too_big = C.refusal_text(settings, budget, lams) if settings is not None and lams is not None else None
    s2.button("Run sweep", icon=PLAY, key="cmp_sweep_btn", type="primary", width="stretch",
              disabled=running or settings is None or lams is None or sweep_too_big is not None, on_click=_start,
              args=("sweep", settings, lams))
    s3.button("Stop", icon=STOP, key="cmp_sweep_stop", width="stretch", disabled=not running, on_click=_stop)
    if lam_bad:
        st.error(lam_bad)
    if sweep_too_big:
        st.error(sweep_too_big, icon=WARN)


def _tick(kind: str, job):
    """Progress bar, then advance the running job of this kind by one budget (the first piece compiles, so the bar
    says so first); when the job finishes (or fails: its one sentence instead of the bar), redraw the whole page
    once."""
    active = ss.get("cmp_active") == kind
    if job.error:
        st.error(job.error, icon=WARN)
        return
    text = job.status if (job.iteration or not active) else "Compiling the jitted steps (a few seconds, first run only)…"
    bar = st.progress(job.progress, text=text)
    if not active:
        return
    try:
        job.advance(budget_s=BUDGET_S)
    except Exception as e:  # noqa: BLE001 - the job ends with one sentence; the page must not retry it every tick
        job.fail(f"The run stopped on an unexpected error: {error_line(e)}.")
    if job.finished:
        ss["cmp_active"] = None
        st.rerun(scope="app")
    bar.progress(job.progress, text=job.status)


@st.fragment(run_every=TICK_S if ss.get("cmp_active") == "run" else None)
def live_run():
    job = ss.get("cmp_job")
    if job is None:
        st.info("Press **Run**: every chosen method starts from the same initial weights at every learning rate of "
                "the sweep and runs full-batch optimisation; the final loss against the rate, the loss curves at each "
                "method's best rate (mean and spread over the inits), the same curves against wall-clock time and "
                "the self-normalizing flow's gradient angle appear here.")
        return
    _tick("run", job)
    if not job.started:
        return
    curves = job.curves()
    view = ss[W["curves"]]
    cut = C.at_rates(curves, view)
    if ss.get("cmp_active") != "run":  # finished or stopped: the conclusion of what ran, computed from it
        st.info(C.conclusion(curves, view)["loss"], icon=FINDING)
    st.plotly_chart(rate_figure(curves), key="cmp_fig_rates", config={"displayModeBar": False})
    st.caption(f"Each method's best rate is the one with {C.RULE}. Equal learning rates are not equal steps: the "
               "relative gradient is the ordinary one multiplied by W̄ᵀW̄ (Gresele et al. eq. 15), so each method "
               "gets its own best rate here; the dashed line is the shared rate.")
    for note in C.divergence_notes(cut, job.explode):
        st.warning(note, icon=WARN)
    st.plotly_chart(convergence_figure(cut, band_kind, show_runs), key="cmp_fig_run",
                    config={"displayModeBar": False})
    at = ("each method at its own best rate of the sweep" if view == "best" else
          "every method at the shared learning rate")
    st.caption(f"All curves start at the same loss: the same initial weights. Here {at}; the legend names each "
               "curve's rate. Gresele et al. (Fig. 1 right) ran both gradients at one setting of theirs and saw no "
               "big difference in the iterations needed. Top right: the same curves against the measured time of "
               "the optimiser steps (all rates and inits of a method run together; the table below gives it per "
               "iteration). " + C.angle_sentence(cut))


@st.fragment(run_every=TICK_S if ss.get("cmp_active") == "sweep" else None)
def live_sweep():
    sweep = ss.get("cmp_sweep")
    if sweep is None:
        return
    _tick("sweep", sweep)
    if not sweep.started:
        return
    st.plotly_chart(lambda_figure(sweep.curves()), key="cmp_fig_sweep", config={"displayModeBar": False})


with tab_run:
    live_run()
with tab_sweep:
    live_sweep()

# ---- results: table and downloads (when nothing runs) -------------------------------------------------------------------
if ss.get("cmp_active") is None:
    job = ss.get("cmp_job")
    if job is not None and job.iteration > 0:
        with tab_run:
            curves = job.curves()
            view = ss[W["curves"]]
            cut = C.at_rates(curves, view)
            rows = C.summary_rows(cut)
            fmt = {k: st.column_config.NumberColumn(format=f) for k, f in (
                ("final NLL (median)", "%.4f"), ("final NLL (mean)", "%.4f"), ("± std", "%.4f"),
                ("ms / iteration", "%.2f"), ("compile (s)", "%.1f"))}
            st.dataframe(pd.DataFrame(C.convergence_table(rows)), hide_index=True, key="cmp_table",
                         column_config=fmt)
            s = replace(job.settings, curves=view)
            st.caption(f"{C.conclusion(curves, view)['time']} That is {len(s.grid)} rates × {s.inits} inits, "
                       "vmapped; compilation and loss evaluation are excluded. True density's NLL on these points: "
                       f"{curves['true_nll']:.3f} nats.")
            stem = f"flowlab_compare_{s.density}_D{s.dim}_{s.optimizer}"
            d1, d2, d3 = st.columns(3)
            d1.download_button("Curves, every rate (.csv)", job.to_csv, file_name=f"{stem}.csv", mime="text/csv",
                               key="cmp_dl_csv", icon=DOWNLOAD)
            d2.download_button("Figures (.html)", lambda: rate_figure(curves).to_html(include_plotlyjs="cdn")
                               + convergence_figure(cut, band_kind, show_runs).to_html(include_plotlyjs=False),
                               file_name=f"{stem}.html", mime="text/html", key="cmp_dl_html", icon=DOWNLOAD)
            summary = {"settings": curves["settings"], "rule": C.RULE, "best_rates": C.best_rates(curves),
                       "conclusion": C.conclusion(curves, view), "summary": rows}
            d3.download_button("Summary (.json)", json.dumps(summary, indent=1), file_name=f"{stem}_summary.json",
                               mime="application/json", key="cmp_dl_json", icon=DOWNLOAD)
            st.caption(f"Headless, the same figures and conclusion: {literal(s.command('convergence'))}")
    sweep = ss.get("cmp_sweep")
    if sweep is not None and sweep.iteration > 0:
        with tab_sweep:
            st.dataframe(pd.DataFrame(C.sweep_table(sweep.summary())), hide_index=True, key="cmp_sweep_table",
                         column_config={k: st.column_config.NumberColumn(format=f) for k, f in (
                             ("final NLL (mean)", "%.4f"), ("± std", "%.4f"), ("final ‖RW−I‖", "%.3g"))})
            st.caption("With plain gradient descent λ also scales the step of the reconstruction term, so a large λ "
                       "needs a small learning rate (Adam rescales per parameter and does not).")
            st.download_button("λ sweep curves (.csv)", sweep.to_csv, file_name="flowlab_compare_lambda_sweep.csv",
                               mime="text/csv", key="cmp_dl_sweep", icon=DOWNLOAD)
