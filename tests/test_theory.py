"""Liao & He eq. 6 (closed-form optimum of a linear flow) and KL helpers (flowlab.theory); the live linear flow that
reaches the bound is tested in test_lessons_linear_flow.py."""
import math

import numpy as np
import pytest

from flowlab import lessons as L
from flowlab import theory as T
from flowlab.densities import get_density
from flowlab.metrics import LOG2PI


@pytest.fixture(scope="module")
def data():
    x, mu, cov = T.correlated_gaussian(3000, std=(2.0, 0.3), angle_deg=40, seed=1)
    return x, mu, cov


def test_closed_form_equals_gaussian_mle_nll(data):
    x, _, _ = data
    mu, cov = T.gaussian_mle(x)
    W, b = T.optimal_linear_flow(x)
    bound = T.optimal_nll(cov)
    assert np.isclose(bound, T.gaussian_nll(x, mu, cov), atol=1e-10)
    assert np.isclose(bound, T.linear_flow_nll(W, b, x), atol=1e-10)
    assert np.isclose(bound, T.gaussian_entropy(cov), atol=1e-12)  # = ½ log det(2πe Σ)
    assert np.isclose(bound, 0.5 * np.linalg.slogdet(2 * math.pi * math.e * cov)[1], atol=1e-12)
    assert np.allclose(W @ cov @ W.T, np.eye(2), atol=1e-10)  # the optimum whitens the data


def test_optimum_is_rotation_invariant_and_stationary(data):
    x, _, _ = data
    W0, b0 = T.optimal_linear_flow(x)
    W1, b1 = T.optimal_linear_flow(x, rotation=L.rotation(73))
    assert not np.allclose(W0, W1)
    assert np.isclose(T.linear_flow_nll(W0, b0, x), T.linear_flow_nll(W1, b1, x), atol=1e-10)
    gW, gb = T.linear_flow_nll_grad(W1, b1, x)
    assert np.abs(gW).max() < 1e-9 and np.abs(gb).max() < 1e-9  # Liao & He eq. 20 vanishes


def test_gradient_formula_against_finite_differences(data):
    x, _, _ = data
    rng = np.random.default_rng(0)
    W, b = np.eye(2) + 0.3 * rng.standard_normal((2, 2)), rng.standard_normal(2)
    gW, gb = T.linear_flow_nll_grad(W, b, x)
    h = 1e-6
    for i in range(2):
        for j in range(2):
            E = np.zeros((2, 2))
            E[i, j] = h
            fd = (T.linear_flow_nll(W + E, b, x) - T.linear_flow_nll(W - E, b, x)) / (2 * h)
            assert np.isclose(gW[i, j], fd, atol=1e-6)
        e = np.zeros(2)
        e[i] = h
        assert np.isclose(gb[i], (T.linear_flow_nll(W, b + e, x) - T.linear_flow_nll(W, b - e, x)) / (2 * h), atol=1e-6)


def test_no_linear_flow_beats_the_bound(data):
    x, _, cov = data
    bound = T.optimal_nll(T.gaussian_mle(x)[1])
    rng = np.random.default_rng(5)
    W0, b0 = T.optimal_linear_flow(x)
    for _ in range(200):
        W = W0 + 0.5 * rng.standard_normal((2, 2)) * rng.uniform(0.001, 1)
        b = b0 + rng.standard_normal(2) * rng.uniform(0.001, 1)
        if abs(np.linalg.det(W)) > 1e-6:
            assert T.linear_flow_nll(W, b, x) >= bound - 1e-12


def test_scale_balance(data):
    x, _, _ = data
    W, b = T.optimal_linear_flow(x)
    p = T.scale_profile(W, b, x, np.linspace(0.5, 2.0, 301))
    assert np.isclose(p["mean_sq_norm"], 2.0) and np.isclose(p["best_scale"], 1.0)  # E‖z‖² = d at the optimum
    assert np.isclose(p["scales"][np.argmin(p["nll"])], 1.0, atol=0.006)
    q = T.scale_profile(0.5 * W, 0.5 * b, x, np.linspace(0.5, 4.0, 701))
    assert np.isclose(q["best_scale"], 2.0)
    assert np.isclose(q["scales"][np.argmin(q["nll"])], 2.0, atol=0.006)


def test_kl_gaussians():
    mu0, S0 = np.array([0.0, 1.0]), np.array([[2.0, 0.3], [0.3, 0.5]])
    mu1, S1 = np.array([1.0, -1.0]), np.array([[1.0, 0.0], [0.0, 3.0]])
    assert T.kl_gaussians(mu0, S0, mu0, S0) == pytest.approx(0.0, abs=1e-12)
    kl = T.kl_gaussians(mu0, S0, mu1, S1)
    # Monte Carlo: E_0[log N0 − log N1]
    x = np.random.default_rng(0).multivariate_normal(mu0, S0, 400_000)
    mc = T.gaussian_nll(x, mu1, S1) - T.gaussian_nll(x, mu0, S0)
    assert kl > 0 and kl == pytest.approx(mc, abs=0.01)
    assert T.kl_gaussians([0.0], [[1.0]], [0.0], [[4.0]]) == pytest.approx(0.5 * (0.25 - 1 + math.log(4)))


def test_linear_flow_gap_is_the_non_gaussianity():
    # correlated Gaussian: the best linear flow is (up to sampling noise) the true density
    x, H = L.linear_lesson_data("correlated_gaussian", n=50_000, seed=2)
    assert abs(T.linear_flow_gap(T.gaussian_mle(x)[1], H)) < 0.02
    # banana: the gap equals KL(p ‖ N(μ, Σ)), estimated independently on fresh samples as E_p[log p − log N]
    x, H = L.linear_lesson_data("banana", n=100_000, seed=2)
    mu, cov = T.gaussian_mle(x)
    gap = T.linear_flow_gap(cov, H)
    d = get_density("banana")
    y = d.sample(100_000, seed=99)
    kl_mc = float(np.mean(np.asarray(d.log_prob(y), np.float64))) + T.gaussian_nll(y, mu, cov)
    assert gap > 0.2  # the banana is far from Gaussian
    assert gap == pytest.approx(kl_mc, abs=0.02)


def test_bad_inputs():
    with pytest.raises(ValueError, match="singular"):
        T.optimal_nll([[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="symmetric"):
        T.optimal_nll([[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="NaN"):
        T.gaussian_mle(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="orthogonal"):
        T.optimal_linear_flow(np.random.default_rng(0).standard_normal((10, 2)), rotation=2 * np.eye(2))


def test_log2pi_is_the_shared_constant():
    assert T.LOG2PI is LOG2PI
