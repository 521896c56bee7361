"""Learn: seven short interactive lessons on normalizing flows, from the change of variables to learned activations.

Thin page: widgets -> flowlab.lessons / flowlab.theory -> flowlab.plots.learn figures."""
from __future__ import annotations

import numpy as np
import streamlit as st

from flowlab import budget, presets
from flowlab import lessons as L
from flowlab import theory as T
from flowlab.activations import make_activation
from flowlab.densities import get_density
from flowlab.gradients import REGISTRY as METHODS
from flowlab.plots import learn as P
from pages._shared.ui import LINK, page_setup

page_setup()

st.title("Learn")
st.caption("Seven short lessons, each with a live widget and a link that opens another page preset. Every number shown "
           "is computed on the spot by `flowlab` (and unit-tested there).")


def try_it(label: str, page: str, **params):
    label = label.replace("_", "\\_")  # a label such as "s_L" is text, not markdown emphasis
    st.markdown(f"{LINK} **Try it →** [{label}]({L.try_it_url(page, **params)})")


def guard(fn, *args, **kw):
    """Run a lesson computation; bad input becomes a one-sentence message, not a traceback."""
    try:
        return fn(*args, **kw)
    except ValueError as e:
        st.error(str(e))
        return None


tabs = st.tabs(["1 · Change of variables", "2 · Linear flows in 2-D", "3 · Cost of the log-det",
                "4 · Relative gradient", "5 · Self-normalizing flows", "6 · The linear-flow optimum",
                "7 · Learned activations", "References"])

# =====================================================================================================================
with tabs[0]:
    st.subheader("1 · Change of variables in one dimension")
    st.markdown("Push samples of a density $p_X$ through a strictly increasing map $z=f(x)$. Probability mass is "
                "conserved, $p_Z(z)\\,|dz| = p_X(x)\\,|dx|$, so the density of $z$ picks up the factor $|dx/dz|$: "
                "where $f$ stretches, the density thins out; where it compresses, it piles up (Zhao §1).")
    st.latex(r"p_Z(z) = p_X\!\big(f^{-1}(z)\big)\,\left|\frac{dx}{dz}\right| = \frac{p_X(x)}{|f'(x)|},\qquad z=f(x)")
    c1, c2, c3, c4 = st.columns(4)
    map_name = c1.selectbox("map f", L.MAPS_1D, format_func=L.MAP_LABELS.get, key="learn_map")
    base = c2.selectbox("input density p_X", L.BASES_1D, format_func=L.BASE_LABELS.get, key="learn_base")
    if map_name == "affine":
        a = c3.slider("slope a", 0.2, 3.0, 1.5, 0.1, key="learn_aff_a")
        c = c4.slider("shift c", -2.0, 2.0, 0.5, 0.1, key="learn_aff_c")
    elif map_name == "tanh_linear":
        a = c3.slider("a (steepness of tanh)", 0.2, 3.0, 1.5, 0.1, key="learn_tanh_a")
        c = c4.slider("β (linear slope, keeps f invertible)", 0.02, 1.0, 0.1, 0.02, key="learn_tanh_b")
    else:
        a = c3.slider("a (slope for x → −∞)", 0.05, 0.95, 0.3, 0.05, key="learn_slr_a")
        c = 0.0
    fmap = guard(L.Map1D, map_name, a, c)
    if fmap is not None:
        r = L.change_of_variables_1d(fmap, L.Base1D(base), n=20_000, bins=60, seed=0)
        st.plotly_chart(P.change_of_variables_figure(r, L.MAP_LABELS[map_name]), width="stretch",
                        key="learn_fig_cov")
        m1, m2, m3 = st.columns(3)
        m1.metric("∫ p_Z(z) dz (formula)", f"{r['mass_z']:.4f}")
        m2.metric("histogram vs formula: χ²", f"{r['chi2']:.1f}", help=f"χ² over {r['dof'] + 1} bins; values near "
                  f"{r['dof']} (± {np.sqrt(2 * r['dof']):.0f}) mean the histogram agrees with the formula.")
        m3.metric("largest |dx/dz| on the plot", f"{np.max(r['dxdz']):.2f}")
    st.caption("A flow layer in FlowLab is exactly this, applied coordinate-wise after a linear map: the activations "
               "tanh+βx and smooth leaky ReLU are the paper's s_T and s_L (Gresele et al. App. H.2).")
    act = "tanh_linear" if map_name == "tanh_linear" else "smooth_leaky_relu"
    try_it(f"train a flow built from this activation on the sine density", "playground", density="sine", layers=8,
           method="relative", activation=act, lr=0.003, batch=256, seed=0)

# =====================================================================================================================
with tabs[1]:
    st.subheader("2 · A linear flow in two dimensions")
    st.markdown("Take $u\\sim\\mathcal N(0,I)$ and $x = A u$. The map sends the unit circle to an ellipse whose "
                "area is $|\\det A|$ times larger, so densities shrink by the same factor and $x$ is Gaussian with "
                "covariance $AA^\\top$ (Zhao §3.3). Composing maps multiplies determinants.")
    st.latex(r"p_X(x) = \frac{\mathcal N(A^{-1}x;\,0,I)}{|\det A|} = \mathcal N(x;\,0,AA^\top),\qquad "
             r"\det(BA) = \det B\,\det A")
    cols = st.columns(4)
    entries = [cols[i].slider(name, -2.0, 2.0, val, 0.05, key=f"learn_A{ij}") for i, (name, ij, val) in
               enumerate((("A₁₁", 11, 1.5), ("A₁₂", 12, 0.6), ("A₂₁", 21, -0.3), ("A₂₂", 22, 0.8)))]
    A = np.array(entries, dtype=float).reshape(2, 2)
    r = L.linear_map_2d(A)
    if abs(r["det"]) < 1e-9:
        st.error("This A is singular (det A = 0): it squashes the plane onto a line, so it is not a flow. "
                 "Move a slider.")
    else:
        st.plotly_chart(P.linear_map_figure(r), width="stretch", key="learn_fig_lin")
        m1, m2, m3 = st.columns(3)
        m1.metric("det A", f"{r['det']:.4f}")
        m2.metric("signed area ratio (ellipse / circle)", f"{r['signed_area_ratio']:.4f}",
                  help="Signed shoelace area of the mapped 256-gon over that of the original 256-gon: exactly det A. "
                       "Its size |det A| is how much areas grow; a negative sign means A reverses orientation (a "
                       "reflection), which a density does not see: it uses |det A|.")
        m3.metric("log-density shift −log|det A|", f"{-np.log(abs(r['det'])):.4f}")
        with st.expander("Compose with a second map B", expanded=False):
            Bname = st.selectbox("B", list(L.COMPOSE_MAPS), key="learn_B")
            comp = L.compose_2d(A, L.COMPOSE_MAPS[Bname])
            st.latex(rf"\det(BA) = {comp['det_BA']:.4f} \;=\; \det B \cdot \det A = {comp['det_B']:.4f}"
                     rf"\times {comp['det_A']:.4f}")
    try_it("see what each layer's map does to a density", "layers", density="banana", layers=4)

# =====================================================================================================================
with tabs[2]:
    st.subheader("3 · Why the log-determinant is expensive")
    st.markdown("The likelihood of a flow needs $\\log|\\det J|$ and its gradient. For a fully connected layer the "
                "gradient of $\\log|\\det W|$ is $W^{-\\top}$ (Gresele eq. 10): an LU factorisation or an inverse, "
                "$O(D^3)$ per layer, while the forward pass itself is only matrix–vector work, $O(D^2)$ per sample "
                "(Gresele §2.3, Zhao §3.1). Measure it:")
    c1, c2 = st.columns([3, 1])
    dmax = c1.select_slider("largest dimension D", [128, 256, 512, 1024], value=512, key="learn_tmax")
    if c2.button("Measure again", key="learn_time_btn") or st.session_state.get("learn_time_dmax") != dmax:
        dims = [d for d in (16, 32, 64, 128, 256, 512, 1024) if d <= dmax]
        with st.spinner("timing…"):
            st.session_state["learn_time"] = L.time_linear_algebra(dims, repeats=7, min_total=1e-3)
        st.session_state["learn_time_dmax"] = dmax
    tr = st.session_state["learn_time"]
    st.plotly_chart(P.timing_figure(tr, L.OP_LABELS), width="stretch", key="learn_fig_time")
    big = int(tr["dims"][-1])
    ratio = tr["times"]["slogdet"][-1] / tr["times"]["matvec"][-1]
    st.caption(f"At D = {big}, one log-det costs as much as {ratio:,.0f} matrix–vector products on this machine. "
               "Single-threaded BLAS; slopes are fitted over the larger half of the sizes. At small D fixed call "
               "overheads flatten every curve, so the asymptotic exponents (3, 3, 2, 0–1) show only for large D.")
    st.markdown("**The triangular shortcut.** If $J$ is triangular, $\\log|\\det J| = \\sum_i \\log|J_{ii}|$ costs "
                "$O(D)$ — the trick behind coupling and autoregressive flows (Zhao §3.4–3.5). The price is "
                "expressivity: output $i$ may only depend on inputs $1..i$, so a single layer cannot mix "
                "coordinates freely, and such maps are not universal approximators of *functions* (Gresele §2.3). "
                "Any dense $W$ (with non-zero leading minors) is a product $LU$ of two triangular maps, but computing "
                "that factorisation is itself $O(D^3)$.")
    Wd = L.random_matrix(5, seed=1)
    lu = L.lu_check(Wd)
    st.plotly_chart(P.dependence_figure(Wd, np.tril(Wd)), width="stretch", key="learn_fig_dep")
    st.caption(f"Check on a random 5×5 W: ‖LU − W‖ = {lu['lu_error']:.1e}, "
               f"Σ log|Uᵢᵢ| = {lu['logdet_lu']:.6f} vs slogdet {lu['logdet']:.6f}.")
    try_it("time the flow's gradient methods against D", "timing", dims=[64, 128, 256, 512],
           methods=["exact", "inverse", "relative"])

# =====================================================================================================================
with tabs[3]:
    st.subheader("4 · The relative gradient")
    st.markdown("Instead of adding a small matrix to $W$, perturb it multiplicatively, $W\\to(I+\\varepsilon)W$ "
                "(eq. 11). To first order the change of a loss $f$ is $\\langle \\nabla f\\,W^\\top, \\varepsilon "
                "\\rangle$ (eq. 12), so the steepest direction for $W$ is $\\nabla f\\,W^\\top W$ (eq. 13). For the "
                "log-det term the inverse cancels (eq. 14), and for the data term the product can be bracketed so "
                "that only matrix–vector work remains (eq. 15):")
    st.latex(r"\frac{\partial \log|\det W|}{\partial W}\,W^\top W = W^{-\top}W^\top W = W")
    st.latex(r"(\delta^\top h)\,W^\top W = \delta^\top\big((h\,W^\top)\,W\big)\quad\text{— only }(B\times D)"
             r"(D\times D)\text{ products, } O(BD^2)")
    c1, c2, c3 = st.columns(3)
    d = c1.slider("dimension D of the random W", 2, 12, 5, key="learn_rg_d")
    seed = c2.number_input("seed", 0, 10_000, 0, key="learn_rg_seed")
    eps = c3.select_slider("perturbation size ε", [1e-1, 1e-2, 1e-3, 1e-4, 1e-5], value=1e-3, key="learn_rg_eps",
                           format_func=lambda v: f"{v:.0e}")
    rc = L.relative_gradient_check(int(d), int(seed), float(eps))
    m1, m2, m3 = st.columns(3)
    m1.metric("eq. 10: ‖G − W⁻ᵀ‖ / ‖W⁻ᵀ‖", f"{rc['err_eq10']:.1e}",
              help="G is the gradient of log|det W| by central finite differences, independent of any formula.")
    m2.metric("eq. 14: ‖G WᵀW − W‖ / ‖W‖", f"{rc['err_eq14']:.1e}")
    m3.metric("eq. 12: first-order error", f"{rc['err_eq12']:.1e}",
              help=f"log|det((I+εE)W)| − log|det W| = {rc['perturb_actual']:.3e} vs the prediction ε·tr E = "
                   f"{rc['perturb_predicted']:.3e}; the error shrinks in proportion to ε.")
    batch = st.select_slider("batch size B", [1, 16, 64, 256, 1024], value=64, key="learn_rg_b")
    uc = L.relative_update_check(int(d), int(batch), int(seed))
    st.caption(f"Eq. 15 live: for D = {d}, B = {batch}, ‖δᵀ((HWᵀ)W) − (δᵀH)WᵀW‖ / ‖(δᵀH)WᵀW‖ = {uc['rel_diff']:.1e}: "
               f"the same matrix. Multiply-adds: {uc['flops']['fast']:,} (eq. 15) vs {uc['flops']['naive']:,} (naive), "
               "counting HWᵀ as free because the forward pass already computed it (it is the pre-activation minus "
               f"the bias); then eq. 15 is cheaper from D = {L.relative_update_crossover(batch)} on. Recomputing HWᵀ "
               f"costs {uc['flops']['fast_with_forward']:,} and moves that point to D = "
               f"{L.relative_update_crossover(batch, reuse=False)}. Eq. 15 never multiplies two D×D matrices.")
    st.plotly_chart(P.flops_figure([16, 64, 256, 1024, 4096], batch, L.relative_update_flops), width="stretch",
                    key="learn_fig_flops")
    try_it("race ordinary vs relative gradient descent (Gresele Fig. 1, right)", "compare", density="moons", layers=2,
           lr=0.1, inits=10, iters=300, opt="gd")

# =====================================================================================================================
with tabs[4]:
    st.subheader("5 · Self-normalizing flows")
    st.markdown("Keller et al. keep next to each weight matrix $W$ a second matrix $R$ that is trained to be its "
                "inverse. Their objective, which is *maximised*, averages the log-likelihoods of the forward model "
                "$f$ and the inverse model $g$ and subtracts a reconstruction penalty with weight $\\lambda$ "
                "(eq. 3):")
    st.latex(r"\mathcal L(x) = \tfrac12\log p_f(x) + \tfrac12\log p_g(x) - \lambda\sum_k \lVert R_k W_k h_k - h_k"
             r"\rVert^2")
    st.markdown("The exact $W$-gradient of the likelihood part contains $W^{-\\top}$ (eq. 8); the self-normalizing "
                "gradient puts $R^\\top$ in its place (eq. 10), so no inverse is ever computed:")
    st.latex(r"\frac{\partial\mathcal L}{\partial W} = \tfrac12\big(\delta_z x^\top + W^{-\top}\big) - "
             r"\lambda\frac{\partial E}{\partial W} \;\approx\; \tfrac12\big(\delta_z x^\top + R^\top\big) - "
             r"\lambda\frac{\partial E}{\partial W},\qquad \delta_z = \frac{\partial\log\mathcal N(z)}{\partial z}"
             r" = -z")
    st.markdown("**Signs and scales.** $\\mathcal L$ is a log-likelihood and goes *up*. FlowLab minimises the NLL "
                "$= -\\log q(x)$ (averaged over a batch) and steps along $\\overline{z x^\\top} - R^\\top + "
                "2\\lambda\\,\\partial E/\\partial W$, which is $-2\\times$ eq. 10: the sign and the ½ change no "
                "direction, and FlowLab's λ is Keller's λ. The angle shown below is Keller's Fig. 3 angle: the "
                "likelihood gradient of $W$ with $R^\\top$ (λ = 0) against the exact one.")
    st.markdown("**The same inverse error costs more near the optimum.** A one-layer flow $z = Wx + b$ on "
                "Gaussian data has a closed-form optimum $W^\\ast$ with $W^\\ast\\Sigma W^{\\ast\\top} = I$ "
                "(lesson 6). Move $W$ on a straight line from a random $W_0$ ($s = 0$) to the nearest optimum "
                "($s = 1$) with the bias at its optimum $b = -W\\mu$, and keep $R = W^{-1} + "
                "\\varepsilon\\lVert W^{-1}\\rVert E$, off by the same relative error $\\varepsilon$ everywhere. "
                "The SNF gradient is the exact gradient $G$ plus a fixed error, so its angle $\\theta$ to $G$ is "
                "bounded by the ratio of the two sizes, and that ratio grows as $G$ vanishes at the optimum:")
    st.latex(r"G_{\mathrm{SNF}} = G + \big(W^{-\top} - R^\top\big),\qquad \sin\theta \le "
             r"\frac{\lVert R - W^{-1}\rVert_F}{\lVert G\rVert_F},\qquad G = W\Sigma - W^{-\top}")
    c1, c2, c3 = st.columns(3)
    d = c1.slider("dimension D", 2, 32, 8, key="learn_snf_d")
    eps = c2.select_slider("relative error ε of R", L.SNF_ERRORS, value=0.1, key="learn_snf_eps",
                           format_func=lambda v: f"{v:.0%}")
    seed = c3.number_input("seed", 0, 10_000, 0, key="learn_snf_seed")
    sr = L.snf_angle_path(int(d), L.SNF_BATCH, float(eps), seed=int(seed))
    st.plotly_chart(P.snf_path_figure(sr), width="stretch", key="learn_fig_snf")
    st.caption(L.snf_path_summary(sr))
    st.markdown("**What λ does.** Eq. 11's likelihood step for $R$ contains $W$ but not $R$, so nothing in it "
                "corrects an error of $R$; the reconstruction term does: its gradient pulls $R$ towards $W^{-1}$. "
                "Below, plain gradient descent trains $W$, $b$ and $R$ of the same flow together with FlowLab's "
                "self-normalizing direction, from $W_0$ with $R$ off by ε, once for each λ (Keller's scale). In "
                "Keller et al.'s MNIST runs (App. A.5, Table 4) every model diverged with λ ≤ 0.1, and above the "
                "smallest λ that trained a larger λ gave a slightly worse NLL.")
    lr_ = L.snf_lambda_runs(int(d), L.SNF_BATCH, float(eps), seed=int(seed))
    st.plotly_chart(P.snf_lambda_figure(lr_), width="stretch", key="learn_fig_snf_lambda")
    for line in L.snf_lambda_summary(lr_):
        st.caption(line)
    try_it("train a self-normalizing flow (tuned settings) on the paper's mixture of three Gaussians", "playground",
           density="trimodal", method="self_normalizing", seed=0)

# =====================================================================================================================
with tabs[5]:
    st.subheader("6 · Linear flows have a closed-form optimum")
    st.markdown("For an affine flow $z = Wx + b$ with base $\\mathcal N(0,I)$, the NLL is "
                "$\\tfrac12 \\mathbb E\\lVert Wx+b\\rVert^2 + \\tfrac d2\\log 2\\pi - \\log|\\det W|$. Its optimum "
                "whitens the data, $W\\Sigma W^\\top = I$, i.e. $W = U\\Lambda^{-1/2}V^\\top$ for any rotation $U$ "
                "(Liao & He App. A.1–A.2), and the best NLL is the entropy of the Gaussian fit (their App. A.2, "
                "eq. 21: the PPCA case, where $W$ and $b$ are shared by all points; eq. 6 is the general "
                "quasi-linear version):")
    st.latex(r"\mathrm{NLL}^\star = \tfrac12\Big(d\log 2\pi + d + \sum_{i=1}^d \log\lambda_i(\Sigma)\Big) = "
             r"\tfrac12\log\det(2\pi e\,\Sigma)")
    st.latex(r"\mathrm{NLL}^\star - H(p) = \mathrm{KL}\big(p\,\|\,\mathcal N(\mu,\Sigma)\big) \;\ge\; 0")
    c1, c2, c3 = st.columns(3)
    data_name = c1.selectbox("data", L.LINEAR_DATA, key="learn_lin_data", format_func=L.LINEAR_DATA_LABELS.get)
    lr = c2.select_slider("learning rate (Adam)", [0.005, 0.01, 0.02, 0.05, 0.1], value=0.05, key="learn_lin_lr")
    steps = c3.select_slider("steps", [100, 200, 300, 400, 600], value=300, key="learn_lin_steps")
    x, H = L.linear_lesson_data(data_name, n=6000, seed=0)
    trainer = L.linear_flow_trainer(x, steps=int(steps), lr=float(lr), seed=0)
    s0 = L.linear_flow_summary(trainer)
    run_key = (data_name, lr, steps)
    if st.button("Train the linear flow", type="primary", key="learn_lin_train"):
        prog = st.progress(0.0, text="compiling…")
        run = L.train_linear_flow(trainer, int(steps), progress=lambda step, total: prog.progress(
            min(1.0, step / total), text=f"step {step} / {total}"))
        prog.empty()
        st.session_state["learn_lin_result"] = {"key": run_key, "run": run}
    res = st.session_state.get("learn_lin_result")
    if res is not None and res["key"] != run_key:
        res = None
    bound = s0["bound"]
    m1, m2, m3 = st.columns(3)
    m1.metric("closed-form optimum NLL*", f"{bound:.4f} nats")
    m2.metric("true entropy H(p)", f"{H:.4f} nats")
    m3.metric("KL(p ‖ best Gaussian) = NLL* − H", f"{T.kl_from_nll(bound, H):.4f} nats",
              help="What no linear flow can learn: zero (up to sampling noise) for Gaussian data.")
    if res is None:
        st.info(f"Press **Train** to fit a one-layer flow (an affine map: the last layer has no activation) for "
                f"{steps} Adam steps with the relative gradient. It starts at NLL {s0['train_nll']:.3f}.")
        summary = s0
    else:
        run = res["run"]
        for msg in run.diverged:
            st.error(msg)
        summary = run.summary
        st.plotly_chart(P.linear_training_figure(run.steps, run.train_nll, bound, H, run.test_steps, run.test_nll),
                        width="stretch", key="learn_fig_lintrain")
        n1, n2, n3 = st.columns(3)
        n1.metric("trained NLL (training set)", f"{summary['train_nll']:.4f}",
                  delta=f"{summary['gap']:+.4f} vs NLL*", delta_color="off")
        wc = summary["whitened_cov"]
        n2.metric("‖W Σ Wᵀ − I‖ (whitening)", f"{summary['whitening_error']:.3f}",
                  help=f"W Σ Wᵀ = [[{wc[0, 0]:.3f}, {wc[0, 1]:.3f}], [{wc[1, 0]:.3f}, {wc[1, 1]:.3f}]]; the optimum "
                       "maps the data covariance to the identity.")
        n3.metric("E‖z‖² (balance: = d = 2)", f"{summary['balance']:.3f}")
    st.markdown("**Expansion vs contraction** (Liao & He §2.2). Scale the whole map by $s$: the log-det term "
                "$-d\\log s$ rewards expanding, the Gaussian term $\\tfrac12 s^2\\,\\mathbb E\\lVert z\\rVert^2$ "
                "punishes it. They balance where $\\mathbb E\\lVert z\\rVert^2 = d$, so every optimum has "
                "$\\mathbb E\\lVert z\\rVert^2 = d$ and $s^\\ast = 1$.")
    prof = T.scale_profile(summary["W"], summary["b"], x, np.linspace(0.25, 3.0, 200))
    st.caption(f"The weights shown ({'before training' if res is None else 'after training'}) give "
               f"E‖z‖² = {prof['mean_sq_norm']:.3f} with d = {prof['dim']}, so the best rescaling is "
               f"s* = √(d / E‖z‖²) = {prof['best_scale']:.3f}.")
    st.plotly_chart(P.scale_profile_figure(prof), width="stretch", key="learn_fig_scale")
    try_it("see a linear flow fail on the banana in the Playground", "playground", density="banana", layers=1,
           method="relative", activation="smooth_leaky_relu", lr=0.01, batch=256, seed=0)

# =====================================================================================================================
@st.cache_data(max_entries=len(L.LESSON_DENSITIES), show_spinner=False)
def learned_activation_run(density: str) -> dict:
    """Lesson 7's fixed-size training run and its measurements, once per density for all sessions."""
    return L.learned_activation_lesson(density)


with tabs[6]:
    st.subheader("7 · Learned activations")
    act = L.lesson_activation()
    n_par, n_steps = act.n_params, L.ACTIVATION_STEPS
    st.markdown("A FlowLab layer is a linear map followed by an elementwise activation, $y_k = h_{k-1}W_k^\\top + "
                "b_k$, $h_k = s(y_k)$ (the last layer is affine). An elementwise map has a diagonal Jacobian, so its "
                "log-det is a sum of $\\log s'$ (Zhao §3.5.1), and each layer's log-det splits in two (Gresele "
                "eq. 9):")
    st.latex(r"\log|\det J_k| = \sum_{i=1}^{D}\log s'(y_{k,i}) + \log|\det W_k|")
    st.markdown(f"The paper fixes $s$: the smooth leaky ReLU $s_L$ or $s_T(x) = \\tanh(\\alpha x) + \\beta x$ "
                f"(App. H.2, eqs. 35–36). FlowLab's tuned preset learns one $s$ per unit ({act.label}): a slope "
                f"and $M = {n_steps}$ tanh steps of learned height, sharpness and position, $n = 1 + 3M = {n_par}$ "
                "parameters $\\theta = (\\rho, \\omega, \\kappa, c)$ per unit:")
    st.latex(r"s(x;\theta) = e^{\rho}x + \sum_{m=1}^{M} e^{\omega_m}\tanh\big(e^{\kappa_m}(x - c_m)\big),\qquad "
             r"s'(x;\theta) = e^{\rho} + \sum_{m=1}^{M} e^{\omega_m+\kappa_m}\,\mathrm{sech}^2\big(e^{\kappa_m}"
             r"(x - c_m)\big) \;\ge\; e^{\rho} > 0")
    st.markdown("Every $\\theta$ gives a strictly increasing $s$, so the flow stays invertible whatever the "
                "optimiser does (its inverse has no closed form; FlowLab finds it by a bracketed Newton iteration). "
                "**Why the relative gradient survives.** $\\theta$ enters the likelihood through $z$ and the first "
                "sum of eq. 9, never through $\\log|\\det W_k|$. It needs no trick: its gradient is ordinary "
                "backpropagation through elementwise functions, $O(B\\cdot D\\cdot n)$ per layer (with the "
                "relative and self-normalizing gradients it comes out of the same backward pass as the errors "
                "$\\delta_k$), while $W$ keeps its method's direction (relative gradient: "
                f"{METHODS['relative'].cost}, no inverse).")
    counts = L.parameter_counts(act)
    ratio = L.step_cost_ratio(act)
    c0 = counts[0]
    m1, m2, m3 = st.columns(3)
    m1.metric(f"weights W per layer at D = {c0['D']}", f"{c0['W']:,}", help="D² entries (plus D biases).")
    m2.metric(f"activation parameters θ per layer at D = {c0['D']}", f"{c0['theta']:,}", help=f"D·n, n = {n_par}.")
    m3.metric("cost of a training step vs a fixed activation", f"{ratio:g}×",
              help="Measured on FlowLab's 2-D flows (Activation.step_cost).")
    st.table({"D": [f"{c['D']:,}" for c in counts], "W: D²": [f"{c['W']:,}" for c in counts],
              f"θ: D·{n_par}": [f"{c['theta']:,}" for c in counts],
              "θ's share of the layer": [f"{c['share']:.1%}" for c in counts]})
    big = counts[-1]
    st.caption(f"At D = {c0['D']} the activations hold {c0['share']:.0%} of a layer's parameters and a training step "
               f"costs {ratio:g}× one with a fixed activation; θ's share falls like n/D, to {big['share']:.1%} at "
               f"D = {big['D']:,}, where the D² matrix work per sample outgrows the D·n elementwise work.")
    c1, c2 = st.columns([3, 1])
    density = c1.selectbox("density", L.LESSON_DENSITIES, key="learn_act_density",
                           format_func=lambda d: get_density(d).label)
    if c2.button("Train", type="primary", key="learn_act_train"):
        st.session_state["learn_act_on"] = True
    cfg = L.lesson_settings(density)
    res = None
    if st.session_state.get("learn_act_on"):
        refusal = L.lesson_refusal(density, budget.session_budget())
        if refusal:
            st.error(refusal)
        else:
            with st.spinner(f"training {cfg['layers']} layers for {L.LESSON_STEPS:,} steps…"):
                res = guard(learned_activation_run, density)
    if res is None:
        view = L.initial_view(density)
        st.info(f"Press **Train** to train a flow with the tuned preset on this density for {L.LESSON_STEPS:,} steps "
                f"({cfg['layers']} layers, {METHODS[cfg['method']].label}, batch {cfg['batch']}, seed "
                f"{L.LESSON_SEED}). Below: the start θ⁰, the same in every unit, close to $s_T$ with α = "
                f"{act.alpha:g}, β = {act.beta:g}. Picking another density afterwards trains again.")
    else:
        view = res
        for msg in res["diverged"]:
            st.error(msg)
    st.plotly_chart(P.learned_activation_figure(view), width="stretch", key="learn_fig_act")
    if res is not None:
        mono, moved, check = res["monotonicity"], res["movement"], res["gradient_check"]
        worst = max(check.values())
        n1, n2, n3, n4 = st.columns(4)
        n1.metric("KL(p‖q), nats", f"{res['kl']:.3f}", help=f"After {res['steps']:,} steps, on held-out points.")
        n2.metric("layer shown", f"{res['layer']} of {len(moved)}",
                  help=f"The layer whose θ moved most from its start. Layers 1 to {len(moved)} have an activation (the last layer is affine); ‖θ_k − θ_k⁰‖ "
                       f"ranges from {moved.min():.2f} to {moved.max():.2f} over them.")
        n3.metric("θ-gradient error", f"{worst:.1e}",
                  help="In float64: the largest relative difference between the θ-direction training takes and autodiff of the "
                       "exact log-likelihood (slogdet), over the Playground's methods.")
        n4.metric("min s′(x) / e^ρ", f"{mono['min_ratio']:.4f}",
                  help=f"Over every unit of every layer, x in [{mono['x_lo']:.1f}, {mono['x_hi']:.1f}].")
        st.caption(L.gradient_summary(check))
        holds = mono["min_ratio"] >= 1.0 and mono["min_slope"] > 0.0
        st.caption(f"On x ∈ [{mono['x_lo']:.1f}, {mono['x_hi']:.1f}] the smallest s' of any unit is "
                   f"{mono['min_deriv']:.3g} and the smallest slope e^ρ is {mono['min_slope']:.3g}: s' ≥ e^ρ > 0 "
                   + ("holds, so every learned s is strictly increasing." if holds else "FAILS on this grid."))
    try_it(f"train the tuned flow ({act.label}, {cfg['layers']} layers) on this density", "playground",
           density=density, activation=act.name, layers=cfg["layers"], seed=L.LESSON_SEED)
    base = presets.DEFAULT
    try_it(f"contrast: the fixed {make_activation(base.activation).label} at {base.layers} layers", "playground",
           density=density, activation=base.activation, layers=base.layers, seed=L.LESSON_SEED)

# =====================================================================================================================
with tabs[7]:
    st.subheader("References")
    st.markdown(
        "1. L. Gresele, G. Fissore, A. Javaloy, B. Schölkopf, A. Hyvärinen. *Relative gradient optimization of the "
        "Jacobian term in unsupervised deep learning.* NeurIPS 2020. — lessons 3, 4 and 7 (§2.3, §3 eqs. 9–10, §4 "
        "eqs. 11–15, App. H.2 eqs. 35–36), the FC flow and activations used throughout FlowLab.\n"
        "2. T. A. Keller, J. W. T. Peters, P. Jaini, E. Hoogeboom, P. Forré, M. Welling. *Self Normalizing Flows.* "
        "ICML 2021. — lesson 5 (eq. 3, §4.1 eqs. 8–11, Fig. 3, App. A.5 Table 4).\n"
        "3. H. Liao, J. He. *Jacobian Determinant of Normalizing Flows.* Preprint. — lesson 6 (§2.1.2 eqs. 4–6, "
        "App. A.1–A.2; §2.2 expansion/contraction).\n"
        "4. H. Zhao. *Normalizing Flow: An Introduction.* Group seminar notes, June 2021. — lessons 1–3 (§1 change of "
        "variables, §3.1 cost, §3.3 linear flows, §3.4–3.5 coupling and autoregressive flows) and 7 (§3.5.1 "
        "elementwise flows).")
