"""Numerical checks behind the Learn page's lessons (flowlab.lessons)."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import gradients as G
from flowlab import lessons as L
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec

MAPS = [L.Map1D("affine", 2.0, 1.0), L.Map1D("tanh_linear", 1.5, 0.2), L.Map1D("smooth_leaky_relu", 0.3)]


# ---- lesson 1: change of variables in 1-D -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmap", MAPS, ids=lambda m: m.name)
@pytest.mark.parametrize("base", L.BASES_1D)
def test_pushforward_density_integrates_to_one_and_matches_histogram(fmap, base):
    r = L.change_of_variables_1d(fmap, L.Base1D(base), n=20_000, bins=40, seed=3)
    assert abs(r["mass_x"] - 1) < 1e-3 and abs(r["mass_z"] - 1) < 1e-3
    # chi-square with `dof` degrees of freedom: mean dof, std sqrt(2 dof); 5 std is a loose but real bound
    assert r["chi2"] < r["dof"] + 5 * math.sqrt(2 * r["dof"])
    # the histogram's bin probabilities agree with the exact ones from the CDF
    assert np.isclose(r["bin_prob"].sum(), 1.0, atol=0.01)


@pytest.mark.parametrize("fmap", MAPS[1:], ids=lambda m: m.name)
def test_dropping_the_jacobian_factor_breaks_normalisation(fmap):
    r = L.change_of_variables_1d(fmap, L.Base1D("gaussian"))
    wrong = r["px"]  # p_X(x) drawn at z = f(x) without |dx/dz|
    assert abs(np.trapezoid(wrong, r["z"]) - 1) > 0.05
    assert np.allclose(r["pz"], r["px"] * r["dxdz"])


@pytest.mark.parametrize("fmap", MAPS, ids=lambda m: m.name)
def test_map_inverse_and_derivative(fmap, x64):
    x = np.linspace(-4, 4, 101)
    assert np.allclose(fmap.inverse(fmap(x)), x, atol=1e-9)
    h = 1e-5
    assert np.allclose(fmap.deriv(x), (fmap(x + h) - fmap(x - h)) / (2 * h), atol=1e-6)


def test_bad_maps_are_rejected_with_a_message():
    with pytest.raises(ValueError, match="positive slope"):
        L.Map1D("affine", -1.0)
    with pytest.raises(ValueError, match="alpha"):
        L.Map1D("smooth_leaky_relu", 1.5)
    with pytest.raises(ValueError, match="Unknown map"):
        L.Map1D("relu")


# ---- lesson 2: 2-D linear maps ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("A", [[[2.0, 0.5], [0.3, 1.0]], [[0.0, 1.0], [1.0, 0.0]], [[0.2, -1.3], [0.7, 0.4]]])
def test_area_ratio_is_det(A):
    r = L.linear_map_2d(A)
    assert np.isclose(r["area_ratio"], np.linalg.det(A), rtol=1e-10)  # signed: a reflection flips orientation
    assert np.isclose(np.prod(r["singular_values"]), abs(r["det"]))


def test_induced_gaussian():
    A = np.array([[1.5, 0.4], [-0.6, 0.8]])
    r = L.linear_map_2d(A, n_samples=40_000, seed=1)
    emp = np.cov(r["x_samples"].T)
    assert np.allclose(emp, A @ A.T, atol=0.05 * np.abs(A @ A.T).max())
    x = np.random.default_rng(0).standard_normal((50, 2)) * 2
    assert np.allclose(L.induced_log_density(A, x), L.gaussian_log_density(A @ A.T, x), atol=1e-10)


def test_composition_multiplies_determinants():
    A, B = L.rotation(30) @ np.diag([2.0, 0.5]), np.array([[1.0, 0.7], [0.0, 1.3]])
    c = L.compose_2d(A, B)
    assert np.isclose(c["det_BA"], c["det_A"] * c["det_B"])
    assert np.isclose(L.linear_map_2d(c["BA"])["area_ratio"], c["det_A"] * c["det_B"])


def test_singular_matrix_has_no_density():
    with pytest.raises(ValueError, match="singular"):
        L.induced_log_density([[1.0, 2.0], [0.5, 1.0]], np.zeros((1, 2)))


# ---- lesson 3: cost of the log-det -----------------------------------------------------------------------------------
@pytest.mark.parametrize("single_thread", [True, False])
def test_timing_structure(single_thread):
    r = L.time_linear_algebra(dims=(8, 16, 32), repeats=1, min_total=1e-4, single_thread=single_thread)
    assert list(r["dims"]) == [8, 16, 32] and r["single_thread"] == single_thread
    for op in L.TIMED_OPS:
        assert r["times"][op].shape == (3,) and np.all(r["times"][op] > 0)
        assert np.isfinite(r["slopes"][op])
    with pytest.raises(ValueError):
        L.time_linear_algebra(dims=(1,))


def test_loglog_slope_recovers_power():
    d = np.array([16, 32, 64, 128])
    assert np.isclose(L.loglog_slope(d, 3e-9 * d**3), 3.0)
    assert np.isclose(L.loglog_slope(d, 5e-7 * d**2), 2.0)


def test_lu_gives_two_triangular_factors_and_the_logdet():
    A = L.random_matrix(6, seed=2)
    Lo, U = L.lu_nopivot(A)
    assert np.allclose(Lo @ U, A)
    assert np.allclose(Lo, np.tril(Lo)) and np.allclose(U, np.triu(U)) and np.allclose(np.diag(Lo), 1)
    assert np.isclose(np.sum(np.log(np.abs(np.diag(U)))), np.linalg.slogdet(A)[1])
    dep = L.triangular_dependence(np.tril(A))
    assert dep[0].sum() == 1 and dep[-1].sum() == 6  # first output sees one input, the last sees all
    with pytest.raises(ValueError, match="permutation"):
        L.lu_nopivot([[0.0, 1.0], [1.0, 0.0]])


# ---- lesson 4: the relative gradient ---------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [2, 5, 9])
def test_relative_gradient_identity(d):
    r = L.relative_gradient_check(d, seed=d, eps=1e-4)
    assert r["err_eq10"] < 1e-7  # ∂log|det W|/∂W = W^{-T}
    assert r["err_eq14"] < 1e-7  # W^{-T} WᵀW = W
    assert r["err_eq12"] < 1e-2  # first-order multiplicative perturbation, error O(eps)
    assert np.isclose(r["perturb_predicted"], r["trace_E"])  # ⟨W^{-T}Wᵀ, εE⟩ = ε tr E


def test_first_order_error_shrinks_with_eps():
    e1 = L.relative_gradient_check(4, seed=1, eps=1e-2)["err_eq12"]
    e2 = L.relative_gradient_check(4, seed=1, eps=1e-3)["err_eq12"]
    assert e2 < e1 / 5


def test_fast_relative_update_equals_naive_and_is_cheaper():
    rng = np.random.default_rng(0)
    D, B = 12, 7
    W, H, delta = L.random_matrix(D, 3), rng.standard_normal((B, D)), rng.standard_normal((B, D))
    assert np.allclose(L.relative_update_fast(delta, H, W), L.relative_update_naive(delta, H, W))
    f = L.relative_update_flops(D, B)
    assert f["fast"] < f["naive"]
    assert L.relative_update_flops(1000, 64)["naive"] / L.relative_update_flops(1000, 64)["fast"] > 10


def test_lesson_relative_update_matches_flowlab_relative_gradient(x64):
    """For one layer with b = 0 the engine's relative gradient is the exact gradient times WᵀW (eq. 13)."""
    D, B = 4, 32
    W = L.random_matrix(D, 5)
    H = np.random.default_rng(1).standard_normal((B, D))
    spec = FlowSpec(D, 1, make_activation())
    params = {"W": jnp.asarray(W[None]), "b": jnp.zeros((1, D))}
    hyper = {"lam": jnp.asarray(1.0)}
    g_rel = np.asarray(G.make_grad_fn("relative", spec)(params, jnp.asarray(H), hyper)[0]["W"][0])
    g_ex = np.asarray(G.make_grad_fn("exact", spec)(params, jnp.asarray(H), hyper)[0]["W"][0])
    assert np.allclose(g_ex, L.linear_layer_grads(W, H), atol=1e-10)
    assert np.allclose(g_rel, g_ex @ W.T @ W, atol=1e-10)
    # the data part through the O(BD²) route of eq. 15, the log-det part is −W (eq. 14)
    Z = H @ W.T
    assert np.allclose(g_rel, L.relative_update_fast(Z / B, H, W) - W, atol=1e-10)


# ---- lesson 5: self-normalizing flows --------------------------------------------------------------------------------
def test_angle_is_accurate_for_tiny_and_large_angles(x64):
    """The angle helpers resolve angles far below acos's ~1e-6° floor, and agree with the definition elsewhere."""
    for theta in (1e-12, 1e-9, 0.3, 2.0, math.pi - 1e-9):
        a, b = np.array([2.0, 0.0, 0.0]), 3.0 * np.array([math.cos(theta), math.sin(theta), 0.0])
        assert L.angle_deg(a, b) == pytest.approx(math.degrees(theta), rel=1e-6)
        g = G.angle_degrees({"W": jnp.asarray(a)}, {"W": jnp.asarray(b)}, keys=("W",))
        assert float(g) == pytest.approx(math.degrees(theta), rel=1e-6)
    assert L.angle_deg([1.0, 2.0], [1.0, 2.0]) == 0.0


def test_snf_angle_curve():
    r = L.snf_angle_curve(d=6, b=128, rel_errors=np.linspace(0, 1, 11), seed=0)
    assert r["angle"][0] == pytest.approx(0.0, abs=1e-6) and r["recon"][0] < 1e-10
    assert np.all(np.diff(r["angle"]) > 0)  # the SNF direction rotates away as R leaves W^{-1}
    assert np.all(np.diff(r["recon"]) > 0)
    assert 0 < r["angle"][-1] < 90
    assert r["angle"][1] < 15  # a 10% error in R costs only a small angle


def test_snf_gradient_matches_flowlab_self_normalizing(x64):
    D, B = 4, 16
    W = L.random_matrix(D, 2)
    R = np.linalg.inv(W) + 0.1 * np.random.default_rng(3).standard_normal((D, D))
    H = np.random.default_rng(4).standard_normal((B, D))
    spec = FlowSpec(D, 1, make_activation())
    params = {"W": jnp.asarray(W[None]), "b": jnp.zeros((1, D)), "R": jnp.asarray(R[None])}
    g = G.make_grad_fn("self_normalizing", spec)(params, jnp.asarray(H), {"lam": jnp.asarray(0.0)})[0]
    assert np.allclose(np.asarray(g["W"][0]), L.linear_layer_grads(W, H, R), atol=1e-10)


# ---- try-it links --------------------------------------------------------------------------------------------------
def test_try_it_urls_follow_the_page_contracts():
    url = L.try_it_url("playground", density="moons", layers=20, method="relative", activation="smooth_leaky_relu",
                       lr=0.003, batch=256, seed=0)
    assert url == "playground?density=moons&layers=20&method=relative&activation=smooth_leaky_relu&lr=0.003&batch=256&seed=0"
    assert L.try_it_url("timing", dims=[64, 128, 256], methods=("relative", "exact")) == \
        "timing?dims=64,128,256&methods=relative,exact"
    assert L.try_it_url("layers", layers=8, density="moons") == "layers?density=moons&layers=8"
    with pytest.raises(ValueError, match="does not read"):
        L.try_it_url("layers", lr=0.1)
    with pytest.raises(ValueError, match="Unknown page"):
        L.try_it_url("nowhere")


def test_learning_R_aligns_the_snf_gradient():
    r = L.snf_learn_inverse(d=6, b=128, steps=200, seed=1)
    assert r["angle"][0] > 5 and r["recon"][0] > 0.5  # R = Wᵀ is a poor inverse for a non-orthogonal W
    assert r["angle"][-1] < 0.01 and r["recon"][-1] < 1e-3
    assert r["loss"][-1] < 1e-6 * r["loss"][0]
    assert np.allclose(r["R"], np.linalg.inv(r["W"]), atol=1e-3)


def test_relative_update_check_and_conditioning():
    assert L.relative_update_check(7, 16, seed=2)["rel_diff"] < 1e-12
    for s in range(5):
        sv = np.linalg.svd(L.random_matrix(9, s), compute_uv=False)
        assert 0.5 - 1e-12 <= sv.min() and sv.max() <= 2 + 1e-12


# ---- figures ------------------------------------------------------------------------------------------------------
def test_figure_builders_return_figures():
    import plotly.graph_objects as go

    from flowlab.plots import learn as P

    r1 = L.change_of_variables_1d(MAPS[1], L.Base1D("bimodal"), n=500, bins=10)
    figs = [P.change_of_variables_figure(r1, "f"), P.linear_map_figure(L.linear_map_2d([[1, 0.5], [0, -1]])),
            P.timing_figure({"dims": np.array([8, 16]), "times": {"slogdet": np.array([1e-6, 3e-6])},
                             "slopes": {"slogdet": 1.6}}, L.OP_LABELS),
            P.dependence_figure(np.ones((3, 3)), np.tril(np.ones((3, 3)))),
            P.flops_figure([16, 64], 8, L.relative_update_flops), P.snf_angle_figure(L.snf_angle_curve(3, 16)),
            P.snf_learning_figure(L.snf_learn_inverse(3, 16, 5)),
            P.linear_training_figure([0, 25], [3.0, 2.6], 2.55, 2.5, [25], [2.6])]
    for f in figs:
        assert isinstance(f, go.Figure) and len(f.data) >= 1
    # the histogram and the formula share the output panel; |dx/dz| sits on the secondary axis
    assert any(t.name == "|dx/dz| (right axis)" and t.yaxis != "y3" for t in figs[0].data)


def test_timing_falls_back_in_process_when_no_child_can_start(monkeypatch):
    import subprocess

    def boom(*a, **k):
        raise OSError("no interpreter")

    monkeypatch.setattr(subprocess, "run", boom)
    r = L.time_linear_algebra(dims=(8, 16), repeats=1, min_total=1e-4)
    assert r["single_thread"] is False and np.all(r["times"]["slogdet"] > 0)
