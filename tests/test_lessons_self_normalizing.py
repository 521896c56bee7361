"""Lesson 5 (flowlab.lessons.self_normalizing): the SNF gradient with Rᵀ in place of W^{-T}, its angle to the exact
one, and learning R ≈ W⁻¹ from the reconstruction loss."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import gradients as G
from flowlab import lessons as L
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec
from flowlab.metrics import inverse_error


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
    # ‖RW − I‖_F is metrics.inverse_error of the R at the last t
    R = np.linalg.inv(r["W"]) + r["E"]
    assert r["recon"][-1] == pytest.approx(float(inverse_error(R, r["W"], np)), rel=1e-12)
    assert r["recon"][-1] == pytest.approx(float(np.linalg.norm(R @ r["W"] - np.eye(6))), rel=1e-12)


def test_snf_gradient_matches_flowlab_self_normalizing(x64):
    D, B = 4, 16
    W = L.random_matrix(D, 2)
    R = np.linalg.inv(W) + 0.1 * np.random.default_rng(3).standard_normal((D, D))
    H = np.random.default_rng(4).standard_normal((B, D))
    spec = FlowSpec(D, 1, make_activation())
    params = {"W": jnp.asarray(W[None]), "b": jnp.zeros((1, D)), "R": jnp.asarray(R[None])}
    g = G.make_grad_fn("self_normalizing", spec)(params, jnp.asarray(H), {"lam": jnp.asarray(0.0)})[0]
    assert np.allclose(np.asarray(g["W"][0]), L.linear_layer_grads(W, H, R), atol=1e-10)


def test_learning_R_aligns_the_snf_gradient():
    r = L.snf_learn_inverse(d=6, b=128, steps=200, seed=1)
    assert r["angle"][0] > 5 and r["recon"][0] > 0.5  # R = Wᵀ is a poor inverse for a non-orthogonal W
    assert r["angle"][-1] < 0.01 and r["recon"][-1] < 1e-3
    assert r["loss"][-1] < 1e-6 * r["loss"][0]
    assert np.allclose(r["R"], np.linalg.inv(r["W"]), atol=1e-3)


def test_snf_problem_needs_enough_samples():
    with pytest.raises(ValueError, match="at least as many samples"):
        L.snf_angle_curve(d=8, b=4)
