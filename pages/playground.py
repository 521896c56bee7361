"""Playground: train a flow live.  Widgets -> flowlab.session.PlaygroundSession (a background training worker) ->
plotly figures of its newest snapshot.

Training never runs in this script: the worker trains beside it and a fragment redraws the newest snapshot a few
times a second.  The settings live in the sidebar and in the URL."""
from __future__ import annotations

import numpy as np
import streamlit as st

from flowlab import files, presets
from flowlab.densities import get_density
from flowlab.flow import model_log_prob
from flowlab.gradients import REGISTRY as METHODS
from flowlab.layerviz.grids import plane_grid
from flowlab.plots.live import density_panel, points_panel, samples_panel
from flowlab.plots.playground import compare_figure, learned_figure, live_curves_figure
from flowlab.session import PlaygroundSession, divergence_advice, follow_choice, steps_line
from flowlab.settings import PLAYGROUND
from pages._shared.live import live_panels
from pages._shared.ui import (WARN, device_line, live_css, page_setup, session_alive, sync_query, upload_id,
                              url_notes)

CURVES_S = 1.0  # seconds between redraws of the curves while training
TRUTH_N = 100  # resolution of the truth comparison (cached per density)
PANEL_H = 300  # largest height of the three panels (px); their width follows the page, equal aspect
CURVES_H = 230
ss = st.session_state
K = {k: f"pg_{k}" for k in PLAYGROUND.keys}  # widget keys
CHOICE = ("density", "method")  # changing one of these loads that combination's tuned settings


# ---- state ---------------------------------------------------------------------------------------------------------
def _session() -> PlaygroundSession:
    if "pg_session" not in ss:
        ss["pg_session"] = PlaygroundSession(alive=session_alive())
    return ss["pg_session"]


def _seed_widgets(settings: dict):
    for k, v in settings.items():
        if k in K:
            ss[K[k]] = v


def _load_url_settings():
    """On a fresh session, or when the URL was changed from outside (a shared link, the Learn page), the URL wins;
    otherwise widgets keep their values (restored from pg_settings after a visit to another page).  Settings a link
    names count as chosen by hand: a later change of density or method keeps them."""
    q = st.query_params.to_dict()
    relevant = {k: v for k, v in q.items() if k in PLAYGROUND.query_keys}
    if "pg_settings" not in ss or (relevant and relevant != ss.get("pg_written_query")):
        settings, notes = PLAYGROUND.parse_query(relevant)
        ss["pg_settings"], ss["pg_url_notes"] = settings, notes
        ss["pg_edited"] = {k for k in relevant if k in PLAYGROUND and k not in CHOICE + ("seed", "contour")}
        _seed_widgets(settings)
    else:
        for k, v in ss["pg_settings"].items():
            if k in K and K[k] not in ss:
                ss[K[k]] = v


def _edited(key: str):
    ss.setdefault("pg_edited", set()).add(key)


def _choice_changed():
    settings, msg = follow_choice({k: ss[K[k]] for k in PLAYGROUND.keys}, ss.get("pg_edited", set()))
    _seed_widgets(settings)
    ss["pg_msg"] = ("info", msg)


def _apply_tuned():
    density, method = ss[K["density"]], ss[K["method"]]
    _seed_widgets(PLAYGROUND.from_preset(presets.tuned(density, method)))
    ss["pg_edited"] = set()
    ss["pg_msg"] = ("info", f"Loaded FlowLab's tuned settings for {get_density(density).label} with the "
                            f"{METHODS[method].label}.")


def _apply_paper():
    density = ss[K["density"]]
    p = presets.paper(density)
    _seed_widgets(PLAYGROUND.from_preset(p))
    ss["pg_edited"] = set()
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
            ss["pg_msg"] = ("error", str(e))
    return run


def _fmt(v, spec=".3f"):
    return "—" if v is None or not np.isfinite(v) else format(v, spec)


# ---- page ----------------------------------------------------------------------------------------------------------
page_setup()
live_css()
st.title("Playground")
st.caption("Train a fully connected normalizing flow on a 2-D density and watch it learn. Settings are in the "
           "sidebar and in the address bar: copy the link to share this experiment.")
_load_url_settings()
sess = _session()

with st.sidebar:
    st.header("Experiment")
    source = st.radio("Data", ["Toy density", "Upload CSV"], key="pg_source", horizontal=True)
    upload = None
    if source == "Upload CSV":
        upload = st.file_uploader("CSV with two numeric columns x, y (header optional, ≤ 100,000 rows)",
                                  type=["csv", "txt"], key="pg_upload")
    st.selectbox(**PLAYGROUND.widget("density"), key=K["density"], disabled=source != "Toy density",
                 on_change=_choice_changed)
    c1, c2 = st.columns(2)
    c1.button("Tuned preset", on_click=_apply_tuned, width="stretch",
              help="FlowLab's tuned settings for this density and method (flowlab.presets.tuned).")
    c2.button("Paper preset", on_click=_apply_paper, width="stretch",
              disabled=ss[K["density"]] not in presets.PAPER or source != "Toy density",
              help="The settings of Gresele et al. (2020), Table 2 — only for trimodal, moons and sine.")
    st.slider(**PLAYGROUND.widget("layers"), key=K["layers"], on_change=_edited, args=("layers",))
    st.radio(**PLAYGROUND.widget("method"), key=K["method"], on_change=_choice_changed)
    st.selectbox(**PLAYGROUND.widget("activation"), key=K["activation"], on_change=_edited, args=("activation",))
    for key in ("lr", "batch", "seed"):
        st.number_input(**PLAYGROUND.widget(key), key=K[key], on_change=_edited, args=(key,))
    with st.expander("More settings"):
        st.number_input(**PLAYGROUND.widget("ntrain"), key=K["ntrain"], disabled=source != "Toy density",
                        on_change=_edited, args=("ntrain",))
        for key in ("clip", "warmup", "decay", "lam", "b2"):
            st.number_input(**PLAYGROUND.widget(key), key=K[key], on_change=_edited, args=(key,),
                            disabled=key == "lam" and not METHODS[ss[K["method"]]].learned_inverse)
        st.selectbox(**PLAYGROUND.widget("init"), key=K["init"], on_change=_edited, args=("init",))
        st.checkbox(**PLAYGROUND.widget("contour"), key=K["contour"])

settings = PLAYGROUND.check({k: ss[K[k]] for k in PLAYGROUND.keys})
ss["pg_settings"] = settings
out_q = PLAYGROUND.dump_query(settings)
sync_query(out_q)
ss["pg_written_query"] = out_q
url_notes(ss.get("pg_url_notes"))

# ---- data: density or upload ---------------------------------------------------------------------------------------
data, data_id, upload_error = None, None, None
if upload is not None:
    raw = upload.getvalue()
    try:
        data = files.parse_points_csv(raw)
        data_id = upload_id(raw)
    except ValueError as e:
        upload_error = f"{upload.name}: {e}"

msg = sess.update(settings, data, data_id)
if msg:
    ss["pg_msg"] = ("warning", msg)
if upload_error:
    st.error(upload_error)
elif source == "Upload CSV" and data is None:
    st.info("Upload a CSV of 2-D points next to *Data* in the sidebar to train on your own data. Uploaded data has "
            "no true density, so the KL is hidden and the test NLL on a held-out 10 % split is shown instead.")
ready = source == "Toy density" or data is not None
if ss.get("pg_msg"):
    kind, text = ss["pg_msg"]
    getattr(st, kind)(text)

# ---- controls --------------------------------------------------------------------------------------------------------
snap0 = sess.snapshot()
busy0 = sess.busy(snap0)
b1, b2, b3, b4, b5 = st.columns([1, 1, 1, 1, 1.6])
label, icon = (("Pause", ":material/pause:") if sess.wanted == "run" and busy0 else
               ("Resume" if snap0.step > 0 else "Train", ":material/play_arrow:"))
# the callback is fixed when the button is drawn: a click delivered twice pauses twice rather than toggling back
b1.button(label, icon=icon, key="pg_train", on_click=_guard(sess.pause if label == "Pause" else sess.start),
          type="primary", disabled=not ready, width="stretch")
b2.button("Step", icon=":material/skip_next:", key="pg_step_btn", on_click=_guard(sess.step_once),
          disabled=not ready, width="stretch", help="Run one chunk of optimiser steps, then stay paused.")
b3.button("Reset", icon=":material/restart_alt:", key="pg_reset", on_click=_guard(sess.reset), disabled=not ready,
          width="stretch", help="Back to the initial weights of this seed (same seed → same weights).")
b4.button("Best", icon=":material/star:", key="pg_best", on_click=_guard(sess.restore_best), disabled=not ready,
          width="stretch",
          help="Pause and put back the weights with the lowest test NLL seen at any chunk so far. Late in training "
               "the test NLL still wobbles from chunk to chunk; the command line keeps these weights by default.")
b5.markdown(device_line())


@st.cache_data(show_spinner=False, max_entries=16)
def _target(density_name: str, seed: int):
    return get_density(density_name).sample_labeled(2000, seed=seed)


@st.cache_data(show_spinner=False, max_entries=16)
def _truth_grid(density_name: str, n: int):
    d = get_density(density_name)
    xs, ys, pts = plane_grid(d.plot_range, n)
    return xs, ys, np.asarray(d.log_prob(pts.astype(np.float32)), np.float64)


def _target_points():
    """(points, labels or None, title) of the data panel."""
    if sess.uploaded:
        return data[:2000], None, "uploaded points"
    pts, lab = _target(settings["density"], settings["seed"])
    return pts, lab, "target samples"


def _publish_model(snap):
    """The current model for the Layers page."""
    if snap.model is None or snap.step == 0:
        return
    spec, params, norm = snap.model
    pts, lab = (data[:2000], None) if sess.uploaded else _target(settings["density"], settings["seed"])
    ss["flowlab_model"] = {"spec": spec, "params": params, "norm": norm,
                           "density": None if sess.uploaded else settings["density"], "data": np.asarray(pts),
                           "labels": None if lab is None else np.asarray(lab), "method": settings["method"],
                           "source": "playground"}


tick = sess.redraw_interval()  # 0.2 s with a few sessions, up to 1 s when many train here


@st.fragment(run_every=tick if ready and busy0 else None)
def live():
    """Metrics, notes and the three panels, from the newest snapshot (training happens in the worker)."""
    if not ready:
        return
    snap = sess.snapshot()
    busy = sess.busy(snap)
    entropy = sess.entropy()
    m = st.columns(5)
    m[0].metric("Step", f"{snap.step:,}")
    m[1].metric("Steps/s", _fmt(snap.steps_per_s, ",.0f"),
                help=f"This session's optimiser steps per second of wall-clock time over the last few seconds. Of "
                     f"{snap.wall_s:.1f} s training so far, {snap.compute_s:.1f} s ran jitted chunks (the first "
                     f"one compiles) and {snap.wait_s:.1f} s waited for a turn while other sessions trained.")
    m[2].metric("Elapsed", f"{snap.wall_s:.1f} s", help="Wall-clock seconds spent training (pauses excluded).")
    m[3].metric("Test NLL", _fmt(snap.latest.get("test_nll")),
                help="Exact negative log-likelihood (nats) of held-out points.")
    if sess.uploaded:
        m[4].metric("KL(p‖q)", "n/a", help="Uploaded data has no known density, so the KL cannot be computed.")
    else:
        m[4].metric("KL(p‖q)", _fmt(snap.latest.get("kl"), ".4f"),
                    help="mean over held-out points of log p − log q: 0 when the flow is the true density. The "
                         f"true entropy H(p) is {entropy:.3f} nats, the floor of the test NLL.")
    for line in (snap.note, snap.error, steps_line(snap, settings["layers"])):
        if line:
            (st.error if line is snap.error else st.caption)(line)
    if snap.divergence is not None:
        st.warning(divergence_advice(snap.divergence, snap.best), icon=WARN)
    if snap.drift:
        st.warning(snap.drift, icon=WARN)
    prange = sess.plot_range()
    pts, lab, title = _target_points()
    panels = [points_panel(pts, prange, title, labels=lab)]
    v = snap.view
    if v is not None and snap.step > 0:
        panels += [density_panel(v["logq"], prange, sess.zmax(), "learned density q(x)"),
                   samples_panel(v["samples"], prange)]
        _publish_model(snap)
    live_panels(panels, key="pg_live", frame=snap.seq, max_height=PANEL_H)
    if v is None or snap.step == 0:
        st.info("Press **Train** (or **Step**) to build the flow; the learned density and its samples appear next "
                "to the target.")
    if busy0 and not busy:  # the run ended on its own (divergence, idle pause) or was paused: redraw the page
        st.rerun(scope="app")
    ss["pg_last_snap"] = snap


@st.fragment(run_every=max(CURVES_S, 4 * tick) if ready and busy0 else None)
def curves():
    """The training curves, redrawn once a second (a plotly figure costs the browser far more than the panels)."""
    snap = sess.snapshot()
    if not ready or snap.step == 0:
        return
    st.plotly_chart(live_curves_figure(snap.history, snap.evals, sess.entropy(), show_kl=not sess.uploaded,
                                       height=CURVES_H), key="pg_fig_curves", config={"displayModeBar": False})
    if settings["contour"] and snap.view is not None:
        v = snap.view
        st.plotly_chart(learned_figure(v["xs"], v["ys"], v["logq"], "learned density with contours",
                                       contour=True, height=PANEL_H, zmax=sess.zmax()), key="pg_fig_learned")


live()
curves()

# ---- after training: compare with the truth, downloads ----------------------------------------------------------------
snap = ss.get("pg_last_snap") or sess.snapshot()
if ready and snap.step > 0 and not busy0 and snap.model is not None:
    spec, params, norm = snap.model
    if not sess.uploaded:
        with st.expander("Compare with the truth", expanded=True):
            xs, ys, true_lp = _truth_grid(settings["density"], TRUTH_N)
            _, _, g = plane_grid(get_density(settings["density"]).plot_range, TRUTH_N)
            kl = snap.latest.get("kl", float("nan"))
            st.plotly_chart(compare_figure(xs, ys, true_lp, model_log_prob(spec, params, norm, g), kl),
                            key="pg_fig_compare", config={"displayModeBar": False})
            st.markdown(f"**KL(p‖q) = {_fmt(kl, '.4f')} nats** on the held-out samples (mean of log p − log q; "
                        f"test NLL {_fmt(snap.latest.get('test_nll'))}, true entropy {sess.entropy():.3f}) after "
                        f"{snap.step:,} steps.")
    with st.expander("Downloads", expanded=False):
        name = "upload" if sess.uploaded else settings["density"]
        stem = f"flowlab_{name}_{settings['method']}_L{settings['layers']}_step{snap.step}"
        entropy = sess.entropy()
        d1, d2, d3, d4 = st.columns(4)
        # built when clicked, from the snapshot in view now
        d1.download_button("Model (.npz)", lambda: files.model_bytes(spec, params, norm, sess.config(snap)),
                           file_name=f"{stem}.npz", mime="application/octet-stream", key="pg_dl_model",
                           icon=":material/download:")
        d2.download_button("Curves (.csv)", lambda: files.curves_csv(snap.history, snap.evals),
                           file_name=f"{stem}_curves.csv", mime="text/csv", key="pg_dl_curves",
                           icon=":material/download:")

        def _density_html():
            xs, ys, g = plane_grid(sess.plot_range(), 140)
            return learned_figure(xs, ys, model_log_prob(spec, params, norm, g), f"learned density · {stem}",
                                  contour=settings["contour"], height=520).to_html(include_plotlyjs="cdn")

        d3.download_button("Learned density (.html)", _density_html, file_name=f"{stem}_density.html",
                           mime="text/html", key="pg_dl_fig", icon=":material/download:")
        d4.download_button("Curves figure (.html)",
                           lambda: live_curves_figure(snap.history, snap.evals, entropy, show_kl=not sess.uploaded)
                           .to_html(include_plotlyjs="cdn"), file_name=f"{stem}_curves.html", mime="text/html",
                           key="pg_dl_curvefig", icon=":material/download:")
        st.caption("Downloads are made when you click. Figures are interactive HTML (plotly.js from its CDN). Load "
                   "the model with `flowlab.files.load_model(path)`.")
