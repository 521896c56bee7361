"""Lesson 5 (flowlab.lessons.self_normalizing): FlowLab's SNF direction against Keller's equations (sign, the ½ and
λ's scale), the lesson's angle against its float64 definition, the angle growing towards the optimum for a fixed
inverse error (and its bound), and what λ does."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import gradients as G
from flowlab import lessons as L
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec


def test_angle_is_accurate_for_tiny_and_large_angles(x64):
    """The angle helpers resolve angles far below acos's ~1e-6° floor, and agree with the definition elsewhere."""
    for theta in (1e-12, 1e-9, 0.3, 2.0, math.pi - 1e-9):
        a, b = np.array([2.0, 0.0, 0.0]), 3.0 * np.array([math.cos(theta), math.sin(theta), 0.0])
        assert L.angle_deg(a, b) == pytest.approx(math.degrees(theta), rel=1e-6)
        g = G.angle_degrees({"W": jnp.asarray(a)}, {"W": jnp.asarray(b)}, keys=("W",))
        assert float(g) == pytest.approx(math.degrees(theta), rel=1e-6)
    assert L.angle_deg([1.0, 2.0], [1.0, 2.0]) == 0.0


def _one_layer(W, R, b=None):
    D = W.shape[0]
    spec = FlowSpec(D, 1, make_activation())
    params = {"W": jnp.asarray(W[None]), "b": jnp.asarray((np.zeros(D) if b is None else b)[None]),
              "R": jnp.asarray(R[None])}
    return spec, params


def test_flowlab_direction_is_minus_twice_kellers_eqs_10_and_17(x64):
    """The lesson's sign convention: Keller's eq. 17 (column vectors, z = W x, δ_z = −z for N(0, I), averaged over
    the batch) is ½(δ_z xᵀ + Rᵀ) − 2λ Rᵀ(RWx − x)xᵀ, to be ascended; FlowLab's W-direction, descended, is −2 × it with
    the same λ (eq. 10 at λ = 0)."""
    D, B, lam = 4, 32, 0.7
    rng = np.random.default_rng(3)
    W = L.random_matrix(D, 2)
    R = np.linalg.inv(W) + 0.1 * rng.standard_normal((D, D))
    X = rng.standard_normal((B, D))  # rows are samples x_b
    keller = np.zeros((D, D))
    for x in X:
        z = W @ x
        keller += 0.5 * (np.outer(-z, x) + R.T) - 2 * lam * R.T @ np.outer(R @ W @ x - x, x)
    keller /= B
    spec, params = _one_layer(W, R)
    for lam_, expected in ((lam, keller), (0.0, (0.5 * (-(X @ W.T).T @ X / B + R.T)))):
        g = G.make_grad_fn("self_normalizing", spec)(params, jnp.asarray(X), {"lam": jnp.asarray(lam_)})[0]
        np.testing.assert_allclose(np.asarray(g["W"][0]), -2 * expected, atol=1e-12)
    assert np.allclose(L.linear_layer_grads(W, X, R), -2 * (0.5 * (-(X @ W.T).T @ X / B + R.T)), atol=1e-12)


def test_problem_optimum_and_path(x64):
    """W* = Q Σ^{-1/2} whitens the data and zeroes the exact gradient; the straight path stays invertible with one
    sign of det W; the inverse error has the asked relative size."""
    p = L.snf_problem(6, 128, seed=1)
    Ws, cov = p["W_opt"], p["cov"]
    np.testing.assert_allclose(Ws @ cov @ Ws.T, np.eye(6), atol=1e-10)
    np.testing.assert_allclose(L.linear_layer_grads(Ws, p["H"] - p["mu"]), 0.0, atol=1e-10)
    signs = {np.sign(np.linalg.det(L.path_point(p, s))) for s in np.linspace(0, 1, 41)}
    assert len(signs) == 1 and 0 not in signs
    W = L.path_point(p, 0.3)
    R = L.snf_inverse(W, p["E"], 0.1)
    assert np.linalg.norm(R - np.linalg.inv(W)) / np.linalg.norm(np.linalg.inv(W)) == pytest.approx(0.1)


def test_lesson_angle_is_kellers_angle_in_float64_terms():
    """The page's (float32) angle along the path equals the float64 angle between G = W Σ − W⁻ᵀ and G + W⁻ᵀ − Rᵀ,
    the one-layer closed forms (b = −W μ, so only W is off the optimum)."""
    r = L.snf_angle_path(5, 200, 0.1, s=[0.0, 0.5, 0.9, 0.99], seed=2)
    for s, got in zip(r["s"], r["angle"]):
        W = L.path_point(r, s)
        R = L.snf_inverse(W, r["E"], 0.1)
        Hc = r["H"] - r["mu"]
        want = L.angle_deg(L.linear_layer_grads(W, Hc), L.linear_layer_grads(W, Hc, R))
        assert got == pytest.approx(want, rel=2e-3, abs=0.02)


@pytest.mark.parametrize("d,seed", [(2, 0), (8, 0), (8, 3), (32, 1)])
def test_angle_grows_towards_the_optimum(d, seed):
    """For a fixed relative inverse error the angle rises monotonically from the random start towards the optimum
    (issue 17: small far away, large near it) and never exceeds asin(‖R − W⁻¹‖ / ‖G‖) where that bound exists."""
    r = L.snf_angle_path(d, 256, 0.1, seed=seed)
    a = r["angle"]
    assert np.all(np.diff(a[r["s"] <= 0.99]) > 0)
    assert a[0] < 10 and a[r["s"] == 0.99][0] > 45
    ok = np.isfinite(r["bound"])
    assert ok[0] and np.all(a[ok] <= r["bound"][ok] + 0.05)
    assert np.all(np.diff(r["grad_norm"]) < 0)  # the exact gradient shrinks towards the optimum
    np.testing.assert_allclose(r["error_norm"] / [np.linalg.norm(np.linalg.inv(L.path_point(r, s)))
                                                   for s in r["s"]], 0.1)


def test_at_the_optimum_the_snf_step_is_the_error_alone(x64):
    """At W* the exact gradient vanishes and the SNF W-direction equals W⁻ᵀ − Rᵀ ≠ 0: a step moves W off W*."""
    p = L.snf_problem(4, 64, seed=0)
    W = p["W_opt"]
    R = L.snf_inverse(W, p["E"], 0.1)
    spec, params = _one_layer(W, R, -W @ p["mu"])
    h = jnp.asarray(p["H"])
    g = G.make_grad_fn("self_normalizing", spec)(params, h, {"lam": jnp.asarray(0.0)})[0]
    np.testing.assert_allclose(np.asarray(G.exact_grads(spec, params, h)["W"][0]), 0.0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(g["W"][0]), np.linalg.inv(W).T - R.T, atol=1e-10)
    assert np.linalg.norm(np.asarray(g["W"][0])) > 0.01


def test_r_likelihood_step_does_not_see_r(x64):
    """The lesson's claim: eq. 11's likelihood step for R contains W but not R (λ = 0: two different R, same step);
    the reconstruction term (λ > 0) is what depends on R."""
    p = L.snf_problem(4, 64, seed=0)
    W, h = p["W0"], jnp.asarray(p["H"])
    steps = []
    for R in (np.linalg.inv(W), np.linalg.inv(W) + 0.3 * p["E"]):
        spec, params = _one_layer(W, R, -W @ p["mu"])
        steps.append([np.asarray(G.make_grad_fn("self_normalizing", spec)(params, h, {"lam": jnp.asarray(lam)})[0]["R"])
                      for lam in (0.0, 1.0)])
    np.testing.assert_allclose(steps[0][0], steps[1][0], atol=1e-12)
    assert not np.allclose(steps[0][1], steps[1][1])


def test_lambda_pulls_r_back_and_lets_w_reach_the_optimum():
    """Plain descent from the same start: with λ = 1 (Keller's scale) ‖RW − I‖ shrinks and the NLL reaches the
    closed-form optimum; with λ = 0 the error of R grows (here until the run diverges)."""
    r = L.snf_lambda_runs(8, 256, 0.1, lams=(0.0, 1.0), seed=0)
    zero, one = r["runs"][0.0], r["runs"][1.0]
    assert one["final_inv_err"] < 1e-2 * one["inv_err"][0] and abs(one["final_gap"]) < 1e-4
    finite = np.isfinite(zero["inv_err"])
    assert np.nanmax(zero["inv_err"][finite]) > 10 * zero["inv_err"][0]
    lines = L.snf_lambda_summary(r)
    bad = np.flatnonzero(~finite)
    if bad.size:
        assert f"diverged at step {bad[0]}" in lines[0]
    assert "within" in lines[1] or f"{one['final_gap']:.3g}" in lines[1]
    assert f"{one['final_inv_err']:.2g}" in lines[1]


def test_path_summary_reads_its_numbers_from_the_data():
    r = L.snf_angle_path(8, 256, 0.1, seed=0)
    text = L.snf_path_summary(r)
    i = {s: int(np.argmin(np.abs(r["s"] - s))) for s in (0.0, 0.5, 0.9, 0.99)}
    for s, fmt in ((0.0, ".1f"), (0.5, ".1f"), (0.9, ".1f"), (0.99, ".0f")):
        assert f"{r['angle'][i[s]]:{fmt}}°" in text
    assert "10%" in text


def test_bad_input():
    with pytest.raises(ValueError, match="more samples than dimensions"):
        L.snf_problem(d=8, b=4)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        L.snf_angle_path(4, 64, 0.1, s=[0.5, 1.0])
