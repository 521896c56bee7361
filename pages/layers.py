"""Layers: watch each layer of a fully connected flow deform the plane (Liao & He Fig. 3 and 4c; Gresele et al. §3).

Thin page: the model comes from the Playground (session), a model file, or a small flow trained here;
flowlab.layerviz does the math, flowlab.plots.layers draws, flowlab.settings.LAYERS_PAGE gives the widgets and the
link."""
from __future__ import annotations

import streamlit as st

from flowlab import layerviz as lv
from flowlab.densities import REGISTRY
from flowlab.plots import layers as PL
from flowlab.plots.gif import points_gif
from flowlab.settings import LAYERS_PAGE, MAX_NAME_CHARS, literal, plain
from pages._shared.ui import page_setup, sync_query, upload_id, url_notes

page_setup()

ss = st.session_state
SOURCES = {"playground": "Playground model", "file": "Model file (.npz)", "train": "Train a small one here"}
LAYERS_ICON = ":material/layers:"
CHART = dict(config={"displayModeBar": False})
DEFAULTS = LAYERS_PAGE.defaults()

st.title("Layers")
st.caption("Follow the data and a grid through every layer of a flow: x → z (normalising) and z → x (generative), "
           "and see how much each layer stretches or squeezes space — split into log|det W_k| and Σ log s′.")


# ---- settings: URL in ------------------------------------------------------------------------------------------------
def _load_url_settings():
    """A fresh session or a link from outside (e.g. the Learn page) sets density and layers and picks 'train here';
    otherwise the widgets keep their values."""
    q = {k: v for k, v in st.query_params.to_dict().items() if k in LAYERS_PAGE.query_keys}
    if "ly_settings" not in ss or (q and q != ss.get("ly_written_query")):
        settings, notes = LAYERS_PAGE.parse_query(q)
        ss["ly_settings"] = {"density": settings["density"], "layers": settings["layers"]}
        ss["ly_url_notes"] = notes
        ss["ly_density"], ss["ly_layers"] = settings["density"], settings["layers"]
        if q:
            ss["ly_source"] = "train"


_load_url_settings()
have_session = "flowlab_model" in ss
options = [s for s in SOURCES if s != "playground" or have_session]
if ss.get("ly_source") not in options:
    ss["ly_source"] = "playground" if have_session else "train"

with st.sidebar:
    st.header("Model")
    source = st.radio("Model", options, format_func=SOURCES.get, key="ly_source", label_visibility="collapsed")
    upload = None
    if source == "train":
        for key, name in (("ly_density", "density"), ("ly_layers", "layers")):
            if key not in ss:  # widget state is dropped while the widget is hidden: restore it
                ss[key] = ss["ly_settings"][name]
        st.selectbox(**LAYERS_PAGE.widget("density"), key="ly_density")
        st.slider(**LAYERS_PAGE.widget("layers"), key="ly_layers")
        st.caption(f"Trained here with the relative gradient for {lv.small_steps(ss['ly_layers']):,} steps "
                   "(a few seconds, once per setting). For a better fit, train in the Playground and come back.")
    elif source == "file":
        upload = st.file_uploader("FlowLab model file (.npz, from the Playground's Downloads)", type=["npz"],
                                  key="ly_upload")
    else:
        st.caption("The model currently in the Playground; it updates while the Playground trains.")
    st.header("View")
    st.slider(**LAYERS_PAGE.widget("points"), value=DEFAULTS["points"], key="ly_points")
    st.checkbox(**LAYERS_PAGE.widget("split"), value=DEFAULTS["split"], key="ly_split")
    st.checkbox(**LAYERS_PAGE.widget("follow"), value=DEFAULTS["follow"], key="ly_follow")

if source == "train":
    ss["ly_settings"] = {"density": ss["ly_density"], "layers": int(ss["ly_layers"])}
out_q = LAYERS_PAGE.dump_query(ss["ly_settings"]) if source == "train" else {}
sync_query(out_q)
ss["ly_written_query"] = out_q
url_notes(ss.get("ly_url_notes"))


# ---- the model -------------------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=16)
def _trained(density: str, layers: int) -> lv.LayerModel:
    return lv.train_small(density, layers)


def _train_here(density: str, layers: int) -> lv.LayerModel:
    with st.spinner(f"Training a {layers}-layer flow on {REGISTRY[density].label} (a few seconds, once per "
                    "setting)…"):
        return _trained(density, int(layers))


def _from_file():
    """(model or None, error sentence as markdown or None).  A bad file keeps the last good one.  The sentence echoes
    the file's name and values, so both are ``literal`` code spans (shown as-is, never as markdown)."""
    last = ss.get("ly_file", (None, None, None))[2]
    if upload is None:
        return last, None
    raw = upload.getvalue()
    h = upload_id(raw)
    if ss.get("ly_file", (None,))[0] == h:
        return last, None
    try:
        m = lv.model_from_file(raw)
    except ValueError as e:
        return last, f"{literal(upload.name, MAX_NAME_CHARS)}: {plain(e)}"
    ss["ly_file"] = (h, upload.name, m)
    return m, None


model = None
if source == "playground":
    try:
        model = lv.model_from_session(ss["flowlab_model"])
    except ValueError as e:
        st.error(str(e))
elif source == "file":
    model, err = _from_file()
    if err:
        st.error(err)
        if model is not None:
            st.info(f"Still showing the previous file, {literal(ss['ly_file'][1], MAX_NAME_CHARS)}.")
    elif model is None:
        st.info("Upload a FlowLab model file (.npz) in the sidebar; the Playground's *Downloads* has one.")
else:
    model = _train_here(ss["ly_settings"]["density"], int(ss["ly_settings"]["layers"]))

if model is None:  # nothing usable from the chosen source: show something else meanwhile, and say so
    if source != "playground" and have_session:
        try:
            model = lv.model_from_session(ss["flowlab_model"])
            st.caption("Meanwhile showing the Playground's model.")
        except ValueError:
            model = None
    if model is None:
        d, n_layers = ss["ly_settings"]["density"], int(ss["ly_settings"]["layers"])
        model = _train_here(d, n_layers)
        st.caption(f"Meanwhile showing a small {n_layers}-layer model trained here on {REGISTRY[d].label}.")

spec, params, norm = model.spec, model.params, model.norm
L = int(spec.layers)

# ---- summary ---------------------------------------------------------------------------------------------------------
st.markdown(lv.describe(model, ss.get("ly_file", ("", "", None))[1]))

n_pts = int(ss["ly_points"])
keep = lv.subsample(len(model.data), n_pts, seed=2)
x, labels = model.data[keep], None if model.labels is None else model.labels[keep]
names = lv.label_names(model.density, labels, model.label_noun) if labels is not None else None
vs = lv.volume_summary(spec, params, norm, x)
split = vs.split
m = st.columns(5)
m[0].metric("Layers", f"{L}")
m[1].metric("log q(x)", f"{vs.mean_log_q:.3f}", help="Mean exact log-likelihood of the points shown (nats).")
m[2].metric("log|det J|", f"{vs.mean_logdet:.3f}",
            help="Mean log|det ∂z/∂x|: the whole flow's volume change, averaged over the points: standardisation + "
                 "Σ_k log|det W_k| + Σ_k Σ_i log s′(y_k,i).")
m[3].metric("Σ log|det W|", f"{vs.logdet_weights:.3f}",
            help="Σ_k log|det W_k|: the data-independent part, summed over layers.")
m[4].metric("Σ log s′", f"{vs.mean_logdet_act:.3f}",
            help="Mean Σ_k Σ_i log s′(y_k,i): the data-dependent part (activations), summed over layers and averaged "
                 "over the points.")

follow = bool(ss["ly_follow"])
split_on = bool(ss["ly_split"])
frame_depths, frame_note = lv.view_depths(L, lv.MAX_FRAMES_SPLIT if split_on else lv.MAX_FRAMES)
panel_depths, panel_note = lv.view_depths(L, lv.MAX_PANELS_SPLIT if split_on else lv.MAX_PANELS)

tab_fwd, tab_gen, tab_vol = st.tabs(["x → z · normalising", "z → x · generative", "Volume change per layer"])

# ---- normalising direction ---------------------------------------------------------------------------------------------
with tab_fwd:
    grid = lv.cartesian_lines(lv.view_range(model), lv.GRID_LINES)
    pts = lv.push(spec, params, norm, x, split=split_on)
    lines = lv.push_lines(spec, params, norm, grid, split=split_on)
    if frame_note:
        st.info(frame_note.replace("the volume-change chart", "the *Volume change* tab"), icon=LAYERS_ICON)
    c1, c2 = st.columns([3, 1.3])
    with c1:
        st.plotly_chart(PL.animation_figure(lv.select_stages(pts, frame_depths), lv.select_stages(lines, frame_depths),
                                            lv.GRID_LINES, labels, names, follow=follow),
                        key="ly_fig_fwd_anim", **CHART)
        fwd = lv.select_stages(pts, frame_depths)
        st.download_button("Animation (.gif)", lambda: points_gif(fwd.values, fwd.names, lv.stage_ranges(fwd, follow),
                                                                  labels),
                           file_name=f"flowlab_layers_{L}_x_to_z.gif", mime="image/gif", key="ly_dl_gif",
                           icon=":material/download:",
                           help="The points of this animation, stage by stage, as an animated GIF for a slide "
                                "(drawn on the server; the grid lines are left out).")
    with c2:
        st.markdown(
            f"**What you see.** The data points ({lv.colouring(model, labels is not None)}) and a regular "
            "grid over the data, pushed through the standardisation $h_0 = (x - \\mu)/\\sigma$ and then layer after "
            "layer until they reach $z = h_L$, which training makes look like a standard normal.\n\n"
            "Press **▶ Play** or drag the slider. Blue lines had constant $x_1$, orange ones constant $x_2$.\n\n"
            "Each layer is an affine map $y_k = W_k h_{k-1} + b_k$ (keeps lines straight and parallel) followed by "
            "the activation $h_k = s(y_k)$ on each coordinate (bends them); the last layer is affine only. "
            "Tick *Affine step and activation as separate stages* to see the two apart. "
            + ("The title says how wide the view is relative to the data plane (Liao & He's “N×”)." if follow else
               "The axes stay those of the data plane, so you see true expansion and contraction."))
    st.subheader("Layer by layer" if not panel_note else "Selected layers")
    if panel_note:
        st.caption(panel_note.replace("the volume-change chart", "the *Volume change* tab"))
    small = lv.without_kind(lv.select_stages(pts, panel_depths), "h0")
    small_lines = lv.without_kind(lv.select_stages(lines, panel_depths), "h0")
    st.plotly_chart(PL.stages_figure(small, small_lines, lv.GRID_LINES, labels, names, follow=follow),
                    key="ly_fig_fwd_small", **CHART)

# ---- generative direction ----------------------------------------------------------------------------------------------
with tab_gen:
    g1, g2 = st.columns([1, 3])
    kind = g1.radio("Grid in z", lv.BASE_GRIDS, horizontal=True, key="ly_ggrid")
    g2.markdown("Base samples $z \\sim \\mathcal N(0, I)$, coloured by their angle, and a grid in the base space, "
                "pulled back through the inverse layers $h_{k-1} = W_k^{-1}\\,(s^{-1}(h_k) - b_k)$ ($s^{-1}$ by "
                "Newton's method) until they land in data space: this is how the flow draws samples.")
    z, zlab = lv.base_points(n_pts)
    zgrid, n_first = lv.base_grid(kind)
    gp = lv.pull(spec, params, norm, z)
    gl = lv.pull_lines(spec, params, norm, zgrid)
    bad = lv.count_nonfinite(gp.values[-1])
    if bad:
        st.warning(f"{bad} of {n_pts} base points did not come back as finite numbers (the inverse overflowed); "
                   "they are left out of the plots.")
    c1, c2 = st.columns([3, 1.3])
    with c1:
        st.plotly_chart(PL.animation_figure(lv.select_stages(gp, frame_depths), lv.select_stages(gl, frame_depths),
                                            n_first, zlab, lv.sector_names(), follow=follow),
                        key="ly_fig_gen_anim", **CHART)
    with c2:
        st.markdown(
            "**Reading it.** "
            + ("Blue circles have radius 0.5, 1, …, 3 in z (most of the Gaussian mass is inside radius 2); "
               "orange rays keep their angle. " if kind == "polar" else
               "Blue lines had constant z₁, orange ones constant z₂. ")
            + "Where the pulled-back grid cells get small, the flow puts a lot of probability: "
              "$q(x) = \\mathcal N(z)\\,|\\det \\partial z/\\partial x|$. Colours show where each angular "
              "sector of the Gaussian ends up.")
    st.subheader("Layer by layer" if not panel_note else "Selected layers")
    small = lv.without_kind(lv.select_stages(gp, panel_depths), "h0")
    small_lines = lv.without_kind(lv.select_stages(gl, panel_depths), "h0")
    st.plotly_chart(PL.stages_figure(small, small_lines, n_first, zlab, lv.sector_names(), follow=follow),
                    key="ly_fig_gen_small", **CHART)

# ---- volume change -----------------------------------------------------------------------------------------------------
with tab_vol:
    st.markdown(
        "Layer $k$ changes volume by $\\log|\\det \\partial h_k/\\partial h_{k-1}| = "
        "\\underbrace{\\log|\\det W_k|}_{\\text{data-independent}} + "
        "\\underbrace{\\textstyle\\sum_i \\log s'(y_{k,i})}_{\\text{data-dependent}}$ "
        "(the last layer is affine: no activation term). Summed over the layers, plus the standardisation's "
        "$-\\sum_i \\log\\sigma_i$, this is the $\\log|\\det \\partial z/\\partial x|$ in "
        "$\\log q(x) = \\log\\mathcal N(z) + \\log|\\det \\partial z/\\partial x|$ (Gresele et al. eq. 9). "
        "Trained flows tend to alternate expansion and contraction (Liao & He §3.2, Fig. 4c)"
        + ("; with the smooth leaky ReLU the activation can only contract ($\\alpha \\le s' \\le 1$), so the "
           "orange bars are never positive." if spec.activation.name == "smooth_leaky_relu" else "."))
    st.plotly_chart(PL.logdet_depth_figure(split), key="ly_fig_depth", **CHART)
    st.caption(f"Check on these {len(x):,} points: log N(z) + standardisation + Σ over layers of both parts − "
               f"log q(x) = {vs.check:.1e} at most (float32 rounding); log q from `flowlab.flow.log_prob`.")

    st.subheader("Where a layer expands or contracts")
    h1, h2, h3 = st.columns([2, 1.2, 1.2])
    k = h1.slider("Layer k", 1, L, min(L, max(1, L // 2)), key="ly_k") if L > 1 else 1
    plane = h2.radio("Plane", ["x", "input"], key="ly_plane",
                     format_func={"x": "data plane x", "input": "layer k's own input h_(k−1)"}.get)
    cumulative = h3.radio("Map", ["alone", "cumulative"], key="ly_cum", disabled=plane == "input",
                          format_func={"alone": "layer k alone", "cumulative": "layers 1…k together"}.get)
    cum = cumulative == "cumulative" and plane == "x"
    field = lv.logdet_field(spec, params, norm, k, x, plot_range=lv.view_range(model), n=90, plane=plane,
                            cumulative=cum)
    c1, c2 = st.columns([3, 1.3])
    c1.plotly_chart(PL.logdet_field_figure(field, PL.field_title(k, plane, cum)), key="ly_fig_field", **CHART)
    with c2:
        if k == L and not cum:
            st.info(f"Layer {L} is the affine last layer: no activation, so its log-det is the constant "
                    f"log|det W_{L}| = {split.weights[-1]:.3f} everywhere.")
        st.markdown(PL.FIELD_LEGEND)
        st.metric(f"log|det W_{k}|", f"{split.weights[k - 1]:.3f}")
        st.metric(f"mean Σ log s′(y_{k})", f"{split.act[k - 1].mean():.3f}")
