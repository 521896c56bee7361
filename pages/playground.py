"""Playground: train a flow live.  Widgets -> flowlab.session.PlaygroundSession -> plotly figures.

The settings live in the sidebar and in the URL; a fragment tick runs one jitted training chunk and redraws."""
from __future__ import annotations

import time

import numpy as np
import streamlit as st

from flowlab import files, presets
from flowlab.densities import get_density
from flowlab.flow import model_log_prob, model_samples
from flowlab.gradients import REGISTRY as METHODS
from flowlab.plots.core import grid
from flowlab.plots.playground import compare_figure, learned_figure, live_curves_figure, points_figure
from flowlab.plots.style import ORANGE
from flowlab.session import PlaygroundSession, data_plot_range, divergence_advice, steps_per_second
from flowlab.settings import PLAYGROUND
from pages._shared.ui import WARN, device_line, page_setup, sync_query, upload_id, url_notes

TICK_S = 0.25  # seconds between live redraws while training (one jitted chunk per tick)
GRID_N = 90  # heatmap resolution while training
TRUTH_N = 100  # resolution of the truth comparison (the moons/spirals log-density is costly: cached per density)
ss = st.session_state
K = {k: f"pg_{k}" for k in PLAYGROUND.keys}  # widget keys


# ---- state ---------------------------------------------------------------------------------------------------------
def _session() -> PlaygroundSession:
    if "pg_session" not in ss:
        ss["pg_session"] = PlaygroundSession()
    return ss["pg_session"]


def _seed_widgets(settings: dict):
    for k, v in settings.items():
        if k in K:
            ss[K[k]] = v


def _load_url_settings():
    """On a fresh session, or when the URL was changed from outside (a shared link, the Learn page), the URL wins;
    otherwise widgets keep their values (and are restored from pg_settings after visiting another page)."""
    q = st.query_params.to_dict()
    relevant = {k: v for k, v in q.items() if k in PLAYGROUND.query_keys}
    if "pg_settings" not in ss or (relevant and relevant != ss.get("pg_written_query")):
        settings, notes = PLAYGROUND.parse_query(relevant)
        ss["pg_settings"], ss["pg_url_notes"] = settings, notes
        _seed_widgets(settings)
    else:
        for k, v in ss["pg_settings"].items():
            if k in K and K[k] not in ss:
                ss[K[k]] = v


def _apply_tuned():
    density, method = ss[K["density"]], ss[K["method"]]
    _seed_widgets(PLAYGROUND.from_preset(presets.tuned(density, method)))
    ss["pg_msg"] = ("info", f"Loaded FlowLab's tuned settings for {density} with the {METHODS[method].label} method.")


def _apply_paper():
    density = ss[K["density"]]
    p = presets.paper(density)
    _seed_widgets(PLAYGROUND.from_preset(p))
    ss["pg_msg"] = ("info", f"Loaded the paper's settings for {density} (Gresele et al. 2020, Table 2): "
                            f"{p.layers} layers, batch {p.batch}, learning rate {p.lr:g}, {p.ntrain:,} training "
                            f"points, a constant learning rate and no clipping; the paper trains "
                            f"{presets.PAPER[density].epochs:,} epochs (≈ {presets.paper_steps(density):,} steps).")


def _guard(fn):
    def run():
        ss["pg_msg"] = None
        try:
            fn()
        except ValueError as e:  # bad settings: one sentence, no traceback
            _session().running = False
            ss["pg_msg"] = ("error", str(e))
    return run


def _start():
    _session().start()


def _pause():
    _session().pause()


def _step():
    _session().step_once()


def _reset():
    _session().reset()


def _best():
    sess = _session()
    last = sess.latest("test_nll")
    b = sess.restore_best()
    if b is None:
        ss["pg_msg"] = ("info", "Nothing to restore: train first, or the current weights already have the lowest "
                                "test NLL so far.")
    else:
        ss["pg_msg"] = ("info", f"Restored the weights of step {b.step:,} (test NLL {b.test_nll:.4f}; the last "
                                f"weights had {last:.4f}). Training continues from them when you press Resume.")


# ---- page ----------------------------------------------------------------------------------------------------------
page_setup()
st.title("Playground")
st.caption("Train a fully connected normalizing flow on a 2-D density and watch it learn. Settings are in the "
           "sidebar and in the address bar: copy the link to share this experiment.")
_load_url_settings()
sess = _session()

with st.sidebar:
    st.header("Experiment")
    source = st.radio("Data", ["Toy density", "Upload CSV"], key="pg_source", horizontal=True)
    st.selectbox(**PLAYGROUND.widget("density"), key=K["density"], disabled=source != "Toy density")
    density = ss[K["density"]]
    c1, c2 = st.columns(2)
    c1.button("Tuned preset", on_click=_apply_tuned, width="stretch",
              help="FlowLab's tuned settings for this density and method (flowlab.presets.tuned).")
    c2.button("Paper preset", on_click=_apply_paper, width="stretch",
              disabled=density not in presets.PAPER or source != "Toy density",
              help="The settings of Gresele et al. (2020), Table 2 — only for trimodal, moons and sine.")
    st.slider(**PLAYGROUND.widget("layers"), key=K["layers"])
    st.radio(**PLAYGROUND.widget("method"), key=K["method"])
    st.selectbox(**PLAYGROUND.widget("activation"), key=K["activation"])
    for key in ("lr", "batch", "seed"):
        st.number_input(**PLAYGROUND.widget(key), key=K[key])
    with st.expander("More settings"):
        st.number_input(**PLAYGROUND.widget("ntrain"), key=K["ntrain"], disabled=source != "Toy density")
        for key in ("clip", "warmup", "decay", "lam", "b2"):
            st.number_input(**PLAYGROUND.widget(key), key=K[key],
                            disabled=key == "lam" and not METHODS[ss[K["method"]]].learned_inverse)
        st.selectbox(**PLAYGROUND.widget("init"), key=K["init"])
        st.checkbox(**PLAYGROUND.widget("contour"), key=K["contour"])

settings = PLAYGROUND.check({k: ss[K[k]] for k in PLAYGROUND.keys})
ss["pg_settings"] = settings
out_q = PLAYGROUND.dump_query(settings)
sync_query(out_q)
ss["pg_written_query"] = out_q

url_notes(ss.get("pg_url_notes"))

# ---- data: density or upload ---------------------------------------------------------------------------------------
data, data_id, upload_error = None, None, None
if source == "Upload CSV":
    up = st.sidebar.file_uploader("CSV with two numeric columns x, y (header optional, ≤ 100,000 rows)",
                                  type=["csv", "txt"], key="pg_upload")
    if up is not None:
        raw = up.getvalue()
        try:
            data = files.parse_points_csv(raw)
            data_id = upload_id(raw)
        except ValueError as e:
            upload_error = f"{up.name}: {e}"

msg = sess.update(settings, data, data_id)
if msg:
    ss["pg_msg"] = ("warning", msg)
if upload_error:
    st.error(upload_error)
elif source == "Upload CSV" and data is None:
    st.info("Upload a CSV of 2-D points in the sidebar to train on your own data. Uploaded data has no true "
            "density, so the KL is hidden and the test NLL on a held-out 10 % split is shown instead.")
ready = source == "Toy density" or data is not None

if ss.get("pg_msg"):
    kind, text = ss["pg_msg"]
    getattr(st, kind)(text)

# ---- controls --------------------------------------------------------------------------------------------------------
b1, b2, b3, b5, b4 = st.columns([1, 1, 1, 1, 2])
running_label, train_icon = (("Pause", ":material/pause:") if sess.running else
                              ("Resume" if sess.step > 0 else "Train", ":material/play_arrow:"))
# the callback is fixed when the button is drawn: a click delivered twice pauses twice rather than toggling back
b1.button(running_label, icon=train_icon, key="pg_train", on_click=_guard(_pause if sess.running else _start),
          type="primary", disabled=not ready, width="stretch")
b2.button("Step", icon=":material/skip_next:", key="pg_step_btn", on_click=_guard(_step), disabled=not ready,
          width="stretch", help="Run one chunk of optimiser steps, then stay paused.")
b3.button("Reset", icon=":material/restart_alt:", key="pg_reset", on_click=_guard(_reset), disabled=not ready,
          width="stretch", help="Back to the initial weights of this seed (same seed → same weights).")
b5.button("Best", icon=":material/star:", key="pg_best", on_click=_guard(_best), disabled=not ready,
          width="stretch",
          help="Pause and put back the weights with the lowest test NLL seen at any chunk so far. Late in training "
               "the test NLL still wobbles from chunk to chunk; the command line keeps these weights by default.")
b4.markdown(device_line())


@st.cache_data(show_spinner=False, max_entries=16)
def _target(density_name: str, seed: int):
    d = get_density(density_name)
    x, lab = d.sample_labeled(2000, seed=seed)
    return x, lab


@st.cache_data(show_spinner=False, max_entries=16)
def _truth_grid(density_name: str, n: int):
    d = get_density(density_name)
    xs, ys, pts = grid(d.plot_range, n)
    return xs, ys, np.asarray(d.log_prob(pts.astype(np.float32)), np.float64)


def _view():
    """(plot range, target points, labels, entropy or None) of the current data source."""
    if sess.uploaded:
        return data_plot_range(data), data[:2000], None, None
    x, lab = _target(settings["density"], settings["seed"])
    return get_density(settings["density"]).plot_range, x, lab, sess.entropy()


def _publish_model():
    """The current model for the Layers page."""
    t = sess.trainer
    if t is None:
        return
    _, pts, lab, _ = _view()
    ss["flowlab_model"] = {"spec": t.spec, "params": t.params, "norm": t.norm,
                           "density": None if sess.uploaded else settings["density"], "data": np.asarray(pts),
                           "labels": None if lab is None else np.asarray(lab), "method": settings["method"],
                           "source": "playground"}


def _fmt(v, spec=".3f"):
    return "—" if v is None or not np.isfinite(v) else format(v, spec)


@st.fragment(run_every=TICK_S if sess.running else None)
def live():
    if not ready:
        return
    t0 = time.perf_counter()
    was_running = sess.running
    try:
        sess.tick()
    except ValueError as e:
        sess.running = False
        ss["pg_msg"] = ("error", str(e))
    t_trained = time.perf_counter()
    if sess.trainer is not None and sess.trainer.step > 0:
        _publish_model()
    if was_running and not sess.running:  # the guard fired: stop the timer and redraw the whole page
        st.rerun(scope="app")
    ticks = ss.setdefault("pg_ticks", [])
    if was_running:  # redraw rate while training, over the last 20 ticks
        ticks.append(time.time())
        del ticks[:-20]
    else:
        ticks.clear()
    rate = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 2 and ticks[-1] > ticks[0] else float("nan")

    t = sess.trainer
    prange, pts, lab, entropy = _view()
    m = st.columns(6)
    m[0].metric("Step", f"{sess.step:,}")
    m[1].metric("Steps/s", _fmt(steps_per_second(t.evals) if t else float("nan"), ",.0f"))
    m[2].metric("Elapsed", f"{(t.elapsed if t else 0.0):.1f} s")
    m[3].metric("Test NLL", _fmt(sess.latest("test_nll")),
                help="Exact negative log-likelihood (nats) of held-out points.")
    if sess.uploaded:
        m[4].metric("KL(p‖q)", "n/a", help="Uploaded data has no known density, so the KL cannot be computed.")
    else:
        m[4].metric("KL(p‖q)", _fmt(sess.latest("kl"), ".4f"),
                    help="Test NLL minus the true entropy H(p) of the held-out points"
                         + (f" ({entropy:.3f} nats)." if entropy is not None else "."))
    prev = ss.get("pg_tick_times")
    m[5].metric("Redraws/s", _fmt(rate, ".1f") if sess.running else "—",
                help="Live updates per second while training (server side)."
                     + (f" Last update: {prev[0]:.2f} s training + {prev[1]:.2f} s drawing." if prev else ""))

    if sess.divergence is not None:
        st.warning(divergence_advice(sess.divergence, t), icon=WARN)

    drift = t.inverse_drift_warning() if t is not None else None
    if drift:
        st.warning(drift, icon=WARN)

    c1, c2, c3 = st.columns(3)
    title = "uploaded points" if sess.uploaded else "target samples"
    fkey = (sess.data_id, settings["density"], settings["seed"])
    if ss.get("pg_target_fig", (None,))[0] != fkey:  # static while training: build once (colour lists are slow)
        ss["pg_target_fig"] = (fkey, points_figure(pts, prange, title, labels=lab))
    c1.plotly_chart(ss["pg_target_fig"][1], key="pg_fig_target", config={"displayModeBar": False})
    if t is not None:
        xs, ys, g = grid(prange, GRID_N)
        lq = model_log_prob(t.spec, t.params, t.norm, g)
        c2.plotly_chart(learned_figure(xs, ys, lq, "learned density q(x)", contour=settings["contour"]),
                        key="pg_fig_learned", config={"displayModeBar": False})
        smp = model_samples(t.spec, t.params, t.norm, seed=settings["seed"])
        c3.plotly_chart(points_figure(smp, prange, "samples from the flow", color=ORANGE),
                        key="pg_fig_samples", config={"displayModeBar": False})
        st.plotly_chart(live_curves_figure(t.history, t.evals, entropy, show_kl=not sess.uploaded),
                        key="pg_fig_curves", config={"displayModeBar": False})
    else:
        c2.info("Press **Train** (or **Step**) to build the flow; the learned density and its samples appear here.")
    ss["pg_tick_times"] = (t_trained - t0, time.perf_counter() - t_trained) if was_running else None


live()

# ---- after training: compare with the truth, downloads ----------------------------------------------------------------
t = sess.trainer
if t is not None and t.step > 0 and not sess.running:
    if not sess.uploaded:
        with st.expander("Compare with the truth", expanded=True):
            xs, ys, true_lp = _truth_grid(settings["density"], TRUTH_N)
            _, _, g = grid(get_density(settings["density"]).plot_range, TRUTH_N)
            learned_lp = model_log_prob(t.spec, t.params, t.norm, g)
            kl = sess.latest("kl")
            fig_cmp = compare_figure(xs, ys, true_lp, learned_lp, kl)
            st.plotly_chart(fig_cmp, key="pg_fig_compare", config={"displayModeBar": False})
            st.markdown(f"**KL(p‖q) = {_fmt(kl, '.4f')} nats** on {len(t.x_test):,} held-out samples "
                        f"(test NLL {_fmt(sess.latest('test_nll'))} − true entropy {sess.entropy():.3f})"
                        f" after {t.step:,} steps.")
    with st.expander("Downloads", expanded=False):
        name = "upload" if sess.uploaded else settings["density"]
        stem = f"flowlab_{name}_{settings['method']}_L{settings['layers']}_step{t.step}"
        d1, d2, d3, d4 = st.columns(4)
        d1.download_button("Model (.npz)", files.model_bytes(t.spec, t.params, t.norm, sess.config()),
                           file_name=f"{stem}.npz", mime="application/octet-stream", key="pg_dl_model")
        d2.download_button("Curves (.csv)", files.curves_csv(t.history, t.evals), file_name=f"{stem}_curves.csv",
                           mime="text/csv", key="pg_dl_curves")
        prange, _, _, entropy = _view()
        xs, ys, g = grid(prange, 140)
        fig_l = learned_figure(xs, ys, model_log_prob(t.spec, t.params, t.norm, g), f"learned density · {stem}",
                               contour=settings["contour"], height=520)
        d3.download_button("Learned density (.html)", fig_l.to_html(include_plotlyjs="cdn"),
                           file_name=f"{stem}_density.html", mime="text/html", key="pg_dl_fig")
        d4.download_button("Curves figure (.html)",
                           live_curves_figure(t.history, t.evals, entropy, show_kl=not sess.uploaded)
                           .to_html(include_plotlyjs="cdn"), file_name=f"{stem}_curves.html", mime="text/html",
                           key="pg_dl_curvefig")
        st.caption("Figures are interactive HTML (plotly.js from its CDN). PNG export would need kaleido and a "
                   "Chrome download, which FlowLab does not install. Load the model with "
                   "`flowlab.files.load_model(path)`.")
