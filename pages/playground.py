"""Playground: train a flow live.  Widgets -> flowlab.session.PlaygroundSession (a background training worker) ->
plotly figures of its newest snapshot.

Training never runs in this script: the worker trains beside it and a fragment redraws the newest snapshot a few
times a second.  The settings live in the sidebar and in the URL."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from flowlab import files, presets
from flowlab.custom_densities import (DRAW_BOX, MAX_IMAGE_BYTES, MAX_POINTS, MIN_POINTS, image_density,
                                      measured_limits, points_density, text_density)
from flowlab.densities import get_density
from flowlab.flow import model_log_prob
from flowlab.gradients import REGISTRY as METHODS
from flowlab.layerviz.grids import plane_grid
from flowlab.plots.export import standalone_html
from flowlab.plots.gif import density_gif, density_picture
from flowlab.plots.live import density_panel, points_panel, samples_panel
from flowlab.plots.playground import compare_figure, learned_figure, live_curves_figure
from flowlab.session import (PlaygroundSession, divergence_advice, follow_choice, needs_rearm, repeated_points,
                             steps_line)
from flowlab.settings import MAX_NAME_CHARS, PLAYGROUND, literal, plain
from flowlab.system import read_results
from pages._shared.live import draw_canvas, live_panels
from pages._shared.ui import (WARN, chart_config, device_line, live_css, page_setup, session_alive, sync_query,
                              upload_id, url_notes)

CURVES_S = 1.0  # seconds between redraws of the curves while training
TRUTH_N = 100  # resolution of the truth comparison (cached per density)
PANEL_H = 300  # largest height of the three panels (px); their width follows the page, equal aspect
CURVES_H = 230
ss = st.session_state
K = {k: f"pg_{k}" for k in PLAYGROUND.keys}  # widget keys
CHOICE = ("density", "method")  # changing one of these loads that combination's tuned settings
OWN_DENSITY_RECORDS = Path(__file__).resolve().parents[1] / "assets" / "benchmarks" / "own_density_cpu.jsonl"
CUSTOM_LIMITS = ("What a flow can learn here: a fully connected flow with smooth activations makes smooth densities. "
                 "It puts its mass where yours is, but it cannot reproduce sharp edges (letters, a picture's "
                 "outlines), and its density is positive everywhere (it maps the whole plane onto the whole plane), "
                 "so some mass always lies between separate pieces (letters, eyes): the KL to a raster stays above "
                 "zero however long it trains.")


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


@st.cache_resource(show_spinner=False, max_entries=32)
def _text_density(text: str):
    return text_density(text)


@st.cache_resource(show_spinner=False, max_entries=8)
def _image_density(raw: bytes, invert: bool):
    return image_density(raw, invert)


@st.cache_resource(show_spinner=False, max_entries=8)
def _points_density(points: tuple, bandwidth: float):
    return points_density(np.asarray(points), bandwidth)


def _drawn():
    """A stroke ended on the canvas: its points (all of them so far) become the drawing."""
    state = ss.get("pg_draw")
    pts = state.get("points") if hasattr(state, "get") else getattr(state, "points", None)
    if pts is not None:
        ss["pg_draw_points"] = [list(p)[:2] for p in pts][:MAX_POINTS]


def _clear_drawing():
    ss["pg_draw_points"] = []
    ss["pg_draw_clear_n"] = ss.get("pg_draw_clear_n", 0) + 1


def _guard(fn):
    def run():
        ss["pg_msg"] = None
        try:
            fn()
        except ValueError as e:  # bad settings: one sentence, no traceback
            ss["pg_msg"] = ("error", plain(e))
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
    st.radio(**PLAYGROUND.widget("source"), key=K["source"])
    source = ss[K["source"]]
    upload = picture = None
    if source == "upload":
        upload = st.file_uploader("CSV with two numeric columns x, y (header optional, ≤ 100,000 rows)",
                                  type=["csv", "txt"], key="pg_upload")
    elif source == "text":
        st.text_input(**PLAYGROUND.widget("text"), key=K["text"])
    elif source == "picture":
        picture = st.file_uploader(f"PNG or JPEG, up to {MAX_IMAGE_BYTES // 2**20} MB: dark pixels are dense",
                                   type=["png", "jpg", "jpeg"], key="pg_picture")
        st.checkbox(**PLAYGROUND.widget("invert"), key=K["invert"])
    elif source == "draw":
        st.slider(**PLAYGROUND.widget("bandwidth"), key=K["bandwidth"])
        st.button("Clear the drawing", icon=":material/delete:", key="pg_draw_clear", on_click=_clear_drawing,
                  width="stretch")
    st.selectbox(**PLAYGROUND.widget("density"), key=K["density"], disabled=source != "toy",
                 on_change=_choice_changed)
    c1, c2 = st.columns(2)
    c1.button("Tuned preset", on_click=_apply_tuned, width="stretch",
              help="FlowLab's tuned settings for this density and method (flowlab.presets.tuned).")
    c2.button("Paper preset", on_click=_apply_paper, width="stretch",
              disabled=ss[K["density"]] not in presets.PAPER or source != "toy",
              help="The settings of Gresele et al. (2020), Table 2 — only for trimodal, moons and sine.")
    st.slider(**PLAYGROUND.widget("layers"), key=K["layers"], on_change=_edited, args=("layers",))
    st.radio(**PLAYGROUND.widget("method"), key=K["method"], on_change=_choice_changed)
    st.selectbox(**PLAYGROUND.widget("activation"), key=K["activation"], on_change=_edited, args=("activation",))
    for key in ("lr", "batch", "seed"):
        st.number_input(**PLAYGROUND.widget(key), key=K[key], on_change=_edited, args=(key,))
    with st.expander("More settings"):
        st.number_input(**PLAYGROUND.widget("ntrain"), key=K["ntrain"], disabled=source == "upload",
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

# ---- data: a toy, your text / picture / drawing, or uploaded points -----------------------------------------------
data, custom, data_id, data_error = None, None, None, None
try:
    if upload is not None:
        raw = upload.getvalue()
        data, data_id = files.parse_points_csv(raw), upload_id(raw)
    elif source == "text":
        custom, data_id = _text_density(settings["text"]), f"text:{settings['text']}"
    elif picture is not None:
        raw = picture.getvalue()
        custom, data_id = _image_density(raw, settings["invert"]), f"picture:{upload_id(raw)}"
    elif source == "draw":
        pts = ss.get("pg_draw_points") or []
        if len(pts) >= MIN_POINTS:
            custom = _points_density(tuple(map(tuple, pts)), settings["bandwidth"])
            data_id = f"draw:{upload_id(repr(pts).encode())}"
except ValueError as e:
    given = upload or picture
    data_error = f"{literal(given.name, MAX_NAME_CHARS)}: {plain(e)}" if given is not None else plain(e)

msg = sess.update(settings, data, data_id, custom)
if msg:
    ss["pg_msg"] = ("warning", msg)
repeats = repeated_points(data) if data is not None and not data_error else None
if data_error:
    st.error(data_error)
elif repeats:
    st.warning(repeats, icon=WARN)
elif source == "upload" and data is None:
    st.info("Upload a CSV of 2-D points next to *Data* in the sidebar to train on your own data. Uploaded data has "
            "no true density, so the KL is hidden and the test NLL on a held-out 10 % split is shown instead.")
elif source == "picture" and custom is None:
    st.info("Upload a picture next to *Data* in the sidebar: the flow learns a density that is high where the "
            "picture is dark (tick *Invert* for light). Its exact density is known, so the KL is shown.")
if source == "draw":
    with st.expander("Your drawing", expanded=sess.snapshot().step == 0, icon=":material/draw:"):
        d1, d2 = st.columns([1, 1.4])
        with d1:
            draw_canvas(ss.get("pg_draw_points") or [], DRAW_BOX, key="pg_draw", clear=ss.get("pg_draw_clear_n", 0),
                        on_change=_drawn)
        d2.markdown(f"Click to place points, drag to paint strokes (at least {MIN_POINTS}). Each point becomes a "
                    "small Gaussian (the bandwidth in the sidebar), so the density you draw is exact and the KL of "
                    "the flow to it is known.")
if custom is not None:
    st.caption(" ".join(filter(None, [CUSTOM_LIMITS, measured_limits(read_results(OWN_DENSITY_RECORDS))])))
ready = data_error is None and (source == "toy" or data is not None or custom is not None)
over_budget = sess.refusal() if ready else None
if over_budget:  # the server's per-session budget (flowlab.budget): nothing is built
    st.error(plain(over_budget), icon=WARN)
    ready = False
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


@st.cache_resource(show_spinner=False, max_entries=32)
def _target(key: str, seed: int, _density):
    """2000 labelled samples of the density being learned (``key`` names it: a toy's name or the user's data id)."""
    return _density.sample_labeled(2000, seed=seed)


@st.cache_resource(show_spinner=False, max_entries=32)
def _truth_grid(key: str, n: int, _density):
    """The true log-density on an n × n grid over its plot range."""
    xs, ys, pts = plane_grid(_density.plot_range, n)
    return xs, ys, np.asarray(_density.log_prob(pts.astype(np.float32)), np.float64)


def _truth_key() -> str:
    return data_id or settings["density"]


def _target_panel(prange):
    """The left panel: the uploaded points, samples of a toy (coloured by mode), or the exact density the user made."""
    if sess.uploaded:
        return points_panel(data[:2000], prange, "uploaded points")
    if custom is not None:
        xs, ys, lp = _truth_grid(_truth_key(), TRUTH_N, custom)
        return density_panel(lp.reshape(len(ys), len(xs)), prange, sess.zmax(), "your density p(x)", name="p(x)")
    pts, lab = _target(_truth_key(), settings["seed"], sess.density)
    return points_panel(pts, prange, "target samples", labels=lab)


def _publish_model(snap):
    """The current model for the Layers page."""
    if snap.model is None or snap.step == 0:
        return
    spec, params, norm = snap.model
    pts, lab = (data[:2000], None) if sess.uploaded else _target(_truth_key(), settings["seed"], sess.density)
    ss["flowlab_model"] = {"spec": spec, "params": params, "norm": norm,
                           "density": None if sess.uploaded else sess.density.name, "data": np.asarray(pts),
                           "labels": None if lab is None else np.asarray(lab), "method": settings["method"],
                           "source": "playground"}


tick = sess.redraw_interval(snap0)  # 0.2 s with a few sessions, up to 0.8 s when many train here, 2 s in line


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
        st.warning(divergence_advice(snap.divergence, snap.best, sess.data), icon=WARN)
    if snap.drift:
        st.warning(snap.drift, icon=WARN)
    prange = sess.plot_range()
    panels = [_target_panel(prange)]
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
    if busy0 and busy and needs_rearm(tick, sess.redraw_interval(snap)):  # the load changed, or let in from the line
        st.rerun(scope="app")
    ss["pg_last_snap"] = snap


@st.fragment(run_every=max(CURVES_S, 4 * tick) if ready and busy0 else None)
def curves():
    """The training curves, redrawn once a second (a plotly figure costs the browser far more than the panels)."""
    snap = sess.snapshot()
    if not ready or snap.step == 0:
        return
    cached = ss.get("pg_curves_fig")  # (snapshot, figure): building it costs ~40 ms; a class redraws more often
    if cached is None or cached[0] != (snap.seq, snap.step, snap.wall_s, sess.uploaded):  # a new snapshot
        cached = ss["pg_curves_fig"] = ((snap.seq, snap.step, snap.wall_s, sess.uploaded),
                                        live_curves_figure(snap.history, snap.evals, sess.entropy(),
                                                           show_kl=not sess.uploaded, height=CURVES_H))
    st.plotly_chart(cached[1], key="pg_fig_curves", config=chart_config("flowlab_curves"))
    if settings["contour"] and snap.view is not None:
        v = snap.view
        st.plotly_chart(learned_figure(v["xs"], v["ys"], v["logq"], "learned density with contours",
                                       contour=True, height=PANEL_H, zmax=sess.zmax()), key="pg_fig_learned")


live()
curves()

# ---- after training: compare with the truth, downloads -----------------------------------------------------------
snap = ss.get("pg_last_snap") or sess.snapshot()
if ready and snap.step > 0 and not busy0 and snap.model is not None:
    spec, params, norm = snap.model
    if not sess.uploaded:
        with st.expander("Compare with the truth", expanded=True):
            xs, ys, true_lp = _truth_grid(_truth_key(), TRUTH_N, sess.density)
            _, _, g = plane_grid(sess.plot_range(), TRUTH_N)
            kl = snap.latest.get("kl", float("nan"))
            st.plotly_chart(compare_figure(xs, ys, true_lp, model_log_prob(spec, params, norm, g), kl),
                            key="pg_fig_compare", config=chart_config("flowlab_truth_vs_learned"))
            st.markdown(f"**KL(p‖q) = {_fmt(kl, '.4f')} nats** on the held-out samples (mean of log p − log q; "
                        f"test NLL {_fmt(snap.latest.get('test_nll'))}, true entropy {sess.entropy():.3f}) after "
                        f"{snap.step:,} steps.")
    with st.expander("Downloads", expanded=False):
        name = "upload" if sess.uploaded else sess.density.name
        stem = f"flowlab_{name}_{settings['method']}_L{settings['layers']}_step{snap.step}"
        entropy = sess.entropy()
        zmax = sess.zmax() if not sess.uploaded else None
        grid_view = snap.view
        d = st.columns(3)
        # every download is built when clicked, from the snapshot in view now
        d[0].download_button("Model (.npz)",
                             lambda: files.model_bytes(spec, params, norm, sess.config(snap), sess.density),
                             file_name=f"{stem}.npz", mime="application/octet-stream", key="pg_dl_model",
                             icon=":material/download:", width="stretch")
        d[1].download_button("Curves (.csv)", lambda: files.curves_csv(snap.history, snap.evals),
                             file_name=f"{stem}_curves.csv", mime="text/csv", key="pg_dl_curves",
                             icon=":material/download:", width="stretch")
        d[2].download_button("Learned density (.png)",
                             lambda: density_picture(grid_view["logq"], zmax or sess.zmax(), f"q(x) · {stem}"),
                             file_name=f"{stem}_density.png", mime="image/png", key="pg_dl_png",
                             icon=":material/image:", width="stretch", disabled=grid_view is None)
        d[0].download_button("Training animation (.gif)",
                             lambda: density_gif([(k, fv["logq"]) for k, fv in snap.frames], zmax or sess.zmax(),
                                                 name),
                             file_name=f"{stem}_training.gif", mime="image/gif", key="pg_dl_gif",
                             icon=":material/animation:", width="stretch", disabled=len(snap.frames) < 2)

        def _density_html():
            xs, ys, g = plane_grid(sess.plot_range(), 140)
            return standalone_html(learned_figure(xs, ys, model_log_prob(spec, params, norm, g),
                                                  f"learned density · {stem}", contour=settings["contour"],
                                                  height=520), f"{stem}_density")

        d[1].download_button("Learned density (.html)", _density_html, file_name=f"{stem}_density.html",
                             mime="text/html", key="pg_dl_fig", icon=":material/download:", width="stretch")
        d[2].download_button("Curves figure (.html)",
                             lambda: standalone_html(live_curves_figure(snap.history, snap.evals, entropy,
                                                                        show_kl=not sess.uploaded),
                                                     f"{stem}_curves"),
                             file_name=f"{stem}_curves.html", mime="text/html", key="pg_dl_curvefig",
                             icon=":material/download:", width="stretch")
        st.caption("Downloads are made when you click. The HTML figures open offline (plotly.js inside); their camera "
                   "button saves a PNG. The animation shows the learned density at evenly spaced steps of this run. "
                   "Load the model with `flowlab.files.load_model(path)`.")
