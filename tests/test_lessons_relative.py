"""Lesson 4 (flowlab.lessons.relative): Gresele eqs. 10–15 checked numerically and against the engine's gradients."""
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import gradients as G
from flowlab import lessons as L
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec


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


@pytest.mark.parametrize("B", [1, 7, 64, 256, 1024])
def test_crossover_of_eq15_depends_on_reusing_hwt(B):
    """The lesson's stated crossover: with H Wᵀ from the forward pass eq. 15 (2BD²) beats the naive BD² + 2D³ from
    D > B/2 on; recomputing H Wᵀ (3BD²) moves it to D > B."""
    assert L.relative_update_crossover(B) == B // 2 + 1
    assert L.relative_update_crossover(B, reuse=False) == B + 1
    d = L.relative_update_crossover(B)
    f_at, f_before = L.relative_update_flops(d, B), L.relative_update_flops(d - 1, B) if d > 1 else None
    assert f_at["fast"] < f_at["naive"] and (f_before is None or f_before["fast"] >= f_before["naive"])


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


def test_relative_update_check_and_conditioning():
    assert L.relative_update_check(7, 16, seed=2)["rel_diff"] < 1e-12
    for s in range(5):
        sv = np.linalg.svd(L.random_matrix(9, s), compute_uv=False)
        assert 0.5 - 1e-12 <= sv.min() and sv.max() <= 2 + 1e-12
    with pytest.raises(ValueError, match="positive integer"):
        L.random_matrix(0)


def test_finite_difference_gradient_is_the_inverse_transpose():
    W = L.random_matrix(3, 4)
    np.testing.assert_allclose(L.fd_grad_logdet(W), np.linalg.inv(W).T, atol=1e-7)
