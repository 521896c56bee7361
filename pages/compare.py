"""Compare: ordinary vs relative vs self-normalizing gradients from the same initial weights (Gresele et al. 2020
Fig. 1 right; Keller et al. 2021 Fig. 3 and Table 4).  Widgets -> flowlab.compare jobs -> flowlab.plots.compare.

A job runs in pieces: while one is running, a fragment tick advances it for a fraction of a second and redraws the
progress bar and the figure; Stop (outside the fragment) cancels between pieces."""
from __future__ import annotations

import json

import jax
import pandas as pd
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from flowlab import compare as C
from flowlab.gradients import LABELS as METHOD_LABELS
from flowlab.plots.compare import convergence_figure, lambda_figure

TICK_S = 0.15  # seconds between redraws while a job runs
BUDGET_S = 0.5  # seconds of work per redraw
LR_DEFAULT = {"gd": 0.02, "adam": 0.005}
ss = st.session_state
W = {f: f"cmp_{f}" for f in ("density", "dim", "layers", "optimizer", "lr", "n_inits", "iterations", "n_points",
                             "methods", "lam", "seed")}

if getattr(PagesManager, "uses_pages_directory", False):
    # Opened by URL on a freshly started server: leave Streamlit's legacy pages/ mode (see pages/playground.py).
    PagesManager.uses_pages_directory = False
    st.rerun()


def _load_url_settings():
    """First visit in this session: URL values (validated; a bad one falls back with a visible note)."""
    if "cmp_loaded" in ss:
        return
    settings, notes = C.settings_from_query(st.query_params.to_dict())
    for f, key in W.items():
        ss[key] = list(settings[f]) if f == "methods" else settings[f]
    ss["cmp_url_notes"], ss["cmp_loaded"] = notes, True


def _optimizer_changed():
    ss[W["lr"]] = LR_DEFAULT[ss[W["optimizer"]]]


def _start(kind: str, settings, lams=None):
    try:
        job = C.ConvergenceRun(settings) if kind == "run" else C.LambdaSweep(settings, lams)
    except ValueError as e:
        ss["cmp_msg"] = str(e)
        return
    ss["cmp_msg"] = None
    ss["cmp_job" if kind == "run" else "cmp_sweep"] = job
    ss["cmp_active"] = kind


def _stop():
    kind = ss.get("cmp_active")
    if kind:
        ss["cmp_job" if kind == "run" else "cmp_sweep"].cancel()
    ss["cmp_active"] = None


def _parse_lams(text: str):
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError("Enter at least one value of λ, e.g. 0, 0.1, 1, 10.")
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"λ values must be numbers separated by commas; {p!r} is not a number.") from None
        if not (0 <= v <= C.LIMITS["lam"][1]):
            raise ValueError(f"Each λ must be between 0 and {C.LIMITS['lam'][1]:g}, got {p}.")
        out.append(v)
    if len(out) > 8:
        raise ValueError(f"At most 8 values of λ at a time, got {len(out)}.")
    return tuple(out)


# ---- page --------------------------------------------------------------------------------------------------------------
st.title("Compare gradients")
st.caption("Ordinary, relative and self-normalizing gradients trained **from the same initial weights** on the same "
           "full batch — Gresele et al. (2020), Fig. 1 right, and Keller et al. (2021), Fig. 3 and Table 4.")
_load_url_settings()
running = ss.get("cmp_active") is not None

with st.sidebar:
    st.header("Experiment")
    st.selectbox("Density", C.density_choices(), key=W["density"], format_func=C.density_label,
                 disabled=running)
    nd = ss[W["density"]] == C.DENSITY_ND
    if not nd and ss[W["dim"]] != 2:
        ss[W["dim"]] = 2  # the toy densities are 2-D
    st.number_input("Dimension D", min_value=C.LIMITS["dim"][0], max_value=C.LIMITS["dim"][1], step=16,
                    key=W["dim"], disabled=running or not nd,
                    help="Only for the Gaussian mixture with random rotations; the toy densities are 2-D. The cost "
                         "of the ordinary gradient grows like D³ (a matrix inverse per layer), the relative and "
                         "self-normalizing ones like N·D².")
    st.number_input("Layers", min_value=1, max_value=C.LIMITS["layers"][1], step=1, key=W["layers"],
                    disabled=running, help="The paper's Fig. 1 uses a two-layer network.")
    st.radio("Optimiser", list(C.OPTIMIZERS), key=W["optimizer"], format_func=lambda o: C.OPTIMIZER_LABELS[o],
             horizontal=True, on_change=_optimizer_changed, disabled=running)
    st.number_input("Learning rate", min_value=C.LIMITS["lr"][0], max_value=C.LIMITS["lr"][1], format="%.4g",
                    step=0.005, key=W["lr"], disabled=running)
    st.slider("Initialisations", 1, 20, key=W["n_inits"], disabled=running,
              help="Random initial weights; every method starts from each of them.")
    st.number_input("Iterations", min_value=1, max_value=C.LIMITS["iterations"][1], step=100, key=W["iterations"],
                    disabled=running)
    st.number_input("Data points (full batch)", min_value=C.LIMITS["n_points"][0],
                    max_value=C.LIMITS["n_points"][1], step=100, key=W["n_points"], disabled=running)
    st.multiselect("Methods", list(C.COMPARE_METHODS), key=W["methods"], disabled=running,
                   format_func=lambda m: C.METHOD_NAMES[m],
                   help="; ".join(f"{C.METHOD_NAMES[m]}: {METHOD_LABELS[m]}" for m in C.COMPARE_METHODS) + ".")
    st.number_input("λ (self-normalizing reconstruction weight)", min_value=0.0, max_value=C.LIMITS["lam"][1],
                    format="%.4g", key=W["lam"], disabled=running)
    st.number_input("Seed", min_value=0, max_value=C.LIMITS["seed"][1], step=1, key=W["seed"], disabled=running,
                    help="Same seed → same data and same initial weights.")
    st.header("Display")
    band_kind = st.radio("Spread over the inits", ["std", "minmax"], key="cmp_band", horizontal=True,
                         format_func=lambda b: "mean ± 1 std" if b == "std" else "min – max")
    show_runs = st.checkbox("Show every init", key="cmp_runs")

for note in ss.get("cmp_url_notes") or []:
    st.warning(note, icon="🔗")

values = {f: ss[key] for f, key in W.items()}
values["methods"] = tuple(values["methods"])
try:
    settings = C.CompareSettings(**values)
    bad = None
except ValueError as e:
    settings, bad = None, str(e)
if settings is not None:
    q = C.settings_to_query(settings)
    if st.query_params.to_dict() != q:
        st.query_params.from_dict(q)
if bad:
    st.error(bad)
if ss.get("cmp_msg"):
    st.error(ss["cmp_msg"])

dev = jax.devices()[0]
tab_run, tab_sweep = st.tabs(["Convergence: same start, three gradients", "λ sweep (self-normalizing)"])

with tab_run:
    c1, c2, c3 = st.columns([1, 1, 4])
    c1.button("▶ Run", key="cmp_run_btn", type="primary", width="stretch", disabled=running or settings is None,
              on_click=_start, args=("run", settings))
    c2.button("■ Stop", key="cmp_stop_btn", width="stretch", disabled=not running, on_click=_stop)
    if settings is not None:
        c3.caption(f"{len(settings.methods)} methods × {settings.n_inits} inits × {settings.iterations:,} iterations "
                   f"on {settings.n_points:,} points in D = {settings.dim} · loss evaluated every {settings.every} "
                   f"step(s) · device {dev.platform.upper()}. The first run compiles for a few seconds.")

with tab_sweep:
    st.markdown("Self-normalizing flows with different reconstruction weights λ, all from the same initial weights "
                "(the sidebar's density, layers, optimiser, learning rate, inits, iterations and points). "
                "Keller et al. (2021, Table 4): too small a λ lets R drift away from W⁻¹ and training becomes "
                "unstable; larger λ keeps R ≈ W⁻¹ but costs a little likelihood. In the left panel, ✕ k/n counts the "
                "inits that failed: diverged (NaN/Inf) or ended above their starting loss.")
    s1, s2, s3 = st.columns([3, 1, 1])
    lam_text = s1.text_input("λ values", value=", ".join(f"{v:g}" for v in C.DEFAULT_LAMBDAS), key="cmp_lams")
    try:
        lams, lam_bad = _parse_lams(lam_text), None
    except ValueError as e:
        lams, lam_bad = None, str(e)
    s2.button("▶ Run sweep", key="cmp_sweep_btn", type="primary", width="stretch",
              disabled=running or settings is None or lams is None, on_click=_start, args=("sweep", settings, lams))
    s3.button("■ Stop", key="cmp_sweep_stop", width="stretch", disabled=not running, on_click=_stop)
    if lam_bad:
        st.error(lam_bad)


def _num(v) -> str:
    """A number for a text column: 3 significant digits, or a dash where there is none (not the method's metric)."""
    return f"{v:.3g}" if v is not None and v == v else "—"


def _divergence_notes(curves: dict):
    for m, d in curves["methods"].items():
        div = d["diverged_at"][d["diverged_at"] >= 0]
        if len(div):
            st.warning(f"**{C.METHOD_NAMES[m]}**: {len(div)} of {len(d['diverged_at'])} inits diverged (first at "
                       f"iteration {int(div.min()):,}): the gradient or the loss became NaN/Inf or exceeded "
                       f"{1000 + 100 * curves['settings']['dim']:,} nats. Their curves stop there (✕); the band "
                       "uses the others. Lower the learning rate to avoid it.", icon="⚠️")


def _tick(kind: str, job):
    """Progress bar, then advance the running job of this kind by one budget (the first piece compiles, so the bar
    says so first); when the job finishes, redraw the whole page once."""
    active = ss.get("cmp_active") == kind
    text = job.status if (job.iteration or not active) else "Compiling the jitted steps (a few seconds, first run only)…"
    bar = st.progress(job.progress, text=text)
    if not active:
        return
    job.advance(budget_s=BUDGET_S)
    if job.finished:
        ss["cmp_active"] = None
        st.rerun(scope="app")
    bar.progress(job.progress, text=job.status)


@st.fragment(run_every=TICK_S if ss.get("cmp_active") == "run" else None)
def live_run():
    job = ss.get("cmp_job")
    if job is None:
        st.info("Press **Run**: every chosen method starts from the same initial weights and runs full-batch "
                "optimisation; the loss curves (mean and spread over the inits), the same curves against "
                "wall-clock time and the self-normalizing flow's gradient angle appear here.")
        return
    _tick("run", job)
    if not job.started:
        return
    curves = job.curves()
    _divergence_notes(curves)
    st.plotly_chart(convergence_figure(curves, band_kind, show_runs), key="cmp_fig_run",
                    config={"displayModeBar": False})
    st.caption("All curves start at the same loss: the same initial weights. Gresele et al. found that the relative "
               "gradient does not need more iterations than the ordinary one; compare the two top-left curves. "
               "Top right: the same against the measured time of the optimiser steps — at D = 2 the steps cost the "
               "same; pick the Gaussian mixture with a large D to see the ordinary gradient's D³ matrix inverse. "
               "Bottom: the self-normalizing flow starts with R = W⁻¹ (angle 0) and its angle grows while R lags "
               "behind W; a larger λ keeps it small (Keller et al. report < 1°).")


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
            rows = C.summary_rows(curves)
            nan = float("nan")
            df = pd.DataFrame([{
                "method": r["label"], "final NLL (mean)": r["final_loss_mean"], "± std": r["final_loss_std"],
                "diverged": f"{r['diverged']}/{r['n']}",
                "ms / iteration": 1000 * r["seconds_per_iteration"], "compile (s)": r["compile_s"],
                "final angle (°)": _num(r.get("final_angle_deg", nan)),
                "final ‖RW−I‖": _num(r.get("final_inv_err", nan))}
                for r in rows])
            fmt = {k: st.column_config.NumberColumn(format=f) for k, f in (
                ("final NLL (mean)", "%.4f"), ("± std", "%.4f"), ("ms / iteration", "%.2f"), ("compile (s)", "%.1f"))}
            st.dataframe(df, hide_index=True, key="cmp_table", column_config=fmt)
            st.caption(f"Time per iteration is for all {curves['settings']['n_inits']} inits together (vmapped), "
                       "optimiser steps only: compilation and loss evaluation are excluded. True density's NLL on "
                       f"these points: {curves['true_nll']:.3f} nats.")
            stem = (f"flowlab_compare_{settings.density if settings else 'run'}_D{curves['settings']['dim']}_"
                    f"{curves['settings']['optimizer']}")
            d1, d2, d3 = st.columns(3)
            d1.download_button("Curves (.csv)", job.to_csv(), file_name=f"{stem}.csv", mime="text/csv",
                               key="cmp_dl_csv")
            d2.download_button("Figure (.html)", convergence_figure(curves, band_kind, show_runs)
                               .to_html(include_plotlyjs="cdn"), file_name=f"{stem}.html", mime="text/html",
                               key="cmp_dl_html")
            d3.download_button("Summary (.json)", json.dumps({"settings": curves["settings"], "summary": rows},
                                                             indent=1), file_name=f"{stem}_summary.json",
                               mime="application/json", key="cmp_dl_json")
            s = curves["settings"]
            st.caption("Headless, the same figure: `python -m flowlab figure convergence "
                       f"--density {s['density']} --dim {s['dim']} --layers {s['layers']} --optimizer "
                       f"{s['optimizer']} --lr {s['lr']:g} --inits {s['n_inits']} --iters {s['iterations']} "
                       f"--points {s['n_points']} --methods {','.join(s['methods'])} --lam {s['lam']:g} "
                       f"--seed {s['seed']} --out runs/compare --png`")
    sweep = ss.get("cmp_sweep")
    if sweep is not None and sweep.iteration > 0:
        with tab_sweep:
            rows = sweep.summary()
            st.dataframe(pd.DataFrame([{
                "λ": r["lambda"], "final NLL (mean)": r["final_nll_mean"], "± std": r["final_nll_std"],
                "diverged": f"{r['diverged']}/{r['n']}", "ended above start": f"{r['ended_above_start']}/{r['n']}",
                "final ‖RW−I‖": r["final_inv_err"]} for r in rows]), hide_index=True, key="cmp_sweep_table",
                column_config={k: st.column_config.NumberColumn(format=f) for k, f in (
                    ("final NLL (mean)", "%.4f"), ("± std", "%.4f"), ("final ‖RW−I‖", "%.3g"))})
            st.caption("With plain gradient descent λ also scales the step of the reconstruction term, so a large λ "
                       "needs a small learning rate (Adam rescales per parameter and does not).")
            st.download_button("λ sweep curves (.csv)", sweep.to_csv(), file_name="flowlab_compare_lambda_sweep.csv",
                               mime="text/csv", key="cmp_dl_sweep")
