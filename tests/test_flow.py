import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab.activations import make_activation
from flowlab.activations import ACTIVATION_NAMES
from flowlab.flow import (DATA_INIT_MIN_STD, FlowSpec, Norm, activation_params, data_init, forward, init_params,
                          inverse, layer_logdets, log_normal, log_prob, sample)


def _model(act="smooth_leaky_relu", D=3, L=4, dtype=jnp.float64):
    spec = FlowSpec(D, L, make_activation(act))
    p = init_params(spec, jax.random.PRNGKey(0), dtype=dtype)
    p["W"] = p["W"] + 0.3 * jax.random.normal(jax.random.PRNGKey(1), p["W"].shape, dtype)
    p["b"] = 0.5 * jax.random.normal(jax.random.PRNGKey(2), p["b"].shape, dtype)
    if "A" in p:  # a learned activation: every unit of every layer its own parameters
        p["A"] = p["A"] + 0.5 * jax.random.normal(jax.random.PRNGKey(6), p["A"].shape, dtype)
    norm = Norm(jnp.asarray([0.5, -1.0, 2.0][:D], dtype), jnp.asarray([2.0, 0.5, 1.5][:D], dtype))
    return spec, p, norm


@pytest.mark.parametrize("act", ACTIVATION_NAMES)
def test_log_prob_equals_jacobian_slogdet(act, x64):
    spec, p, norm = _model(act)
    x = jax.random.normal(jax.random.PRNGKey(3), (9, 3), jnp.float64) * 2

    def f(xi):
        return forward(spec, p, xi[None], norm).z[0]

    J = jax.vmap(jax.jacfwd(f))(x)
    ref = log_normal(jax.vmap(f)(x)) + jnp.linalg.slogdet(J)[1]
    np.testing.assert_allclose(log_prob(spec, p, x, norm), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ACTIVATION_NAMES)
def test_inverse_round_trip(act, x64):
    spec, p, norm = _model(act)
    x = jax.random.normal(jax.random.PRNGKey(4), (50, 3), jnp.float64) * 3
    z = forward(spec, p, x, norm).z
    np.testing.assert_allclose(inverse(spec, p, z, norm), x, atol=1e-9)
    x_back, hs = inverse(spec, p, z, norm, return_all=True)
    assert hs.shape == (4, 50, 3)
    np.testing.assert_allclose(hs[0], norm.apply(x), atol=1e-9)  # undoing layer 1 gives h_0


@pytest.mark.parametrize("act", ["smooth_leaky_relu", "learned_steps"])
def test_layer_logdets_sum_to_total(act, x64):
    spec, p, norm = _model(act)
    x = jax.random.normal(jax.random.PRNGKey(5), (7, 3), jnp.float64)
    ldw, lda = layer_logdets(spec, p, x, norm)
    assert ldw.shape == (4,) and lda.shape == (4, 7)
    assert float(jnp.max(jnp.abs(lda[-1]))) == 0.0  # the last layer is affine
    z = forward(spec, p, x, norm).z
    total = log_normal(z) + jnp.sum(ldw) + jnp.sum(lda, 0) + norm.logdet()
    np.testing.assert_allclose(total, log_prob(spec, p, x, norm), rtol=1e-12)


def test_single_layer_is_affine(x64):
    spec = FlowSpec(2, 1, make_activation("tanh_linear"))
    p = {"W": jnp.array([[[2.0, 1.0], [0.0, 0.5]]]), "b": jnp.array([[1.0, -1.0]])}
    x = jnp.array([[0.3, -0.2], [1.0, 2.0]])
    np.testing.assert_allclose(forward(spec, p, x).z, x @ p["W"][0].T + p["b"][0])


def test_init_orthogonal_and_identity_noise():
    spec = FlowSpec(4, 3)
    W = init_params(spec, jax.random.PRNGKey(0))["W"]
    np.testing.assert_allclose(jnp.einsum("lij,lkj->lik", W, W), jnp.broadcast_to(jnp.eye(4), (3, 4, 4)), atol=1e-5)
    p = init_params(spec, jax.random.PRNGKey(0), init="identity_noise", noise=0.01, with_R=True)
    assert float(jnp.max(jnp.abs(p["W"] - jnp.eye(4)))) < 0.05
    np.testing.assert_array_equal(p["R"], jnp.swapaxes(p["W"], -1, -2))
    a = init_params(spec, jax.random.PRNGKey(9))["W"]
    b = init_params(spec, jax.random.PRNGKey(9))["W"]
    np.testing.assert_array_equal(a, b)


def test_data_init_standardises_every_pre_activation(x64):
    """After data_init every layer's pre-activation has batch mean 0 and std 1, R is W's inverse, the flow still
    inverts, and the given parameters are left as they were."""
    spec = FlowSpec(3, 5)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(4000, 3)) * np.array([3.0, 0.2, 1.0]) + np.array([5.0, -1.0, 0.0]))
    p0 = init_params(spec, jax.random.PRNGKey(1), with_R=True, dtype=jnp.float64)
    W0 = np.array(p0["W"])
    p = data_init(spec, p0, x)
    np.testing.assert_array_equal(p0["W"], W0)
    ys = forward(spec, p, x).ys
    np.testing.assert_allclose(ys.mean(axis=1), 0.0, atol=1e-10)
    np.testing.assert_allclose(ys.std(axis=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(jnp.einsum("lij,ljk->lik", p["R"], p["W"]), jnp.broadcast_to(jnp.eye(3), (5, 3, 3)),
                               atol=1e-12)
    np.testing.assert_allclose(inverse(spec, p, forward(spec, p, x[:100]).z), x[:100], atol=1e-8)
    # the untrained flow now spreads the data instead of shrinking it: a far better starting log-likelihood
    assert float(jnp.mean(log_prob(spec, p, x))) > float(jnp.mean(log_prob(spec, p0, x))) + 5.0


def test_data_init_on_degenerate_data_stays_finite(x64):
    """A constant coordinate (std 0) hits the floor on sigma instead of dividing by zero."""
    spec = FlowSpec(2, 3)
    x = jnp.stack([jnp.linspace(-1.0, 1.0, 500), jnp.zeros(500)], axis=1)
    p = data_init(spec, init_params(spec, jax.random.PRNGKey(0), init="identity_noise", noise=0.0,
                                    dtype=jnp.float64), x)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in p.values())
    assert float(jnp.max(jnp.abs(p["W"]))) <= 1.0 / DATA_INIT_MIN_STD + 1e-9


def test_samples_follow_the_model_density(x64):
    """Samples of a 1-layer (affine) flow are Gaussian with the covariance the model implies."""
    spec = FlowSpec(2, 1)
    A = jnp.array([[[1.5, 0.3], [-0.2, 0.7]]])
    p = {"W": A, "b": jnp.array([[0.5, -1.0]])}
    x = sample(spec, p, jax.random.PRNGKey(0), 100_000)
    Ainv = jnp.linalg.inv(A[0])
    np.testing.assert_allclose(jnp.cov(x.T), Ainv @ Ainv.T, rtol=0.03, atol=0.01)
    np.testing.assert_allclose(x.mean(0), -Ainv @ p["b"][0], atol=0.02)


def test_learned_activation_parameters_and_their_start(x64):
    """A learned activation adds A (L-1, D, n) (none for the affine last layer); the learned leaky ReLU starts as the
    fixed s_L, so the untrained flows are the same density; a flow without A cannot run a learned activation."""
    fixed = FlowSpec(3, 4, make_activation("smooth_leaky_relu"))
    learned = FlowSpec(3, 4, make_activation("learned_leaky_relu"))
    pf = init_params(fixed, jax.random.PRNGKey(0), dtype=jnp.float64)
    pl = init_params(learned, jax.random.PRNGKey(0), dtype=jnp.float64)
    assert "A" not in pf and pl["A"].shape == (3, 3, 1)
    np.testing.assert_array_equal(pl["W"], pf["W"])
    x = jax.random.normal(jax.random.PRNGKey(1), (20, 3), jnp.float64)
    np.testing.assert_allclose(log_prob(learned, pl, x), log_prob(fixed, pf, x), rtol=1e-12)
    assert activation_params(learned, pl).shape == (4, 3, 1) and activation_params(fixed, pf).shape == (4, 3, 0)
    assert init_params(FlowSpec(2, 1, make_activation("learned_steps")), jax.random.PRNGKey(0))["A"].shape == (0, 2, 10)
    with pytest.raises(ValueError, match="no params\\['A'\\]"):
        log_prob(learned, pf, x)


def test_data_init_with_a_learned_activation(x64):
    """data_init standardises the pre-activations through the learned activation's current parameters and keeps A."""
    spec = FlowSpec(2, 4, make_activation("learned_steps"))
    x = jnp.asarray(np.random.default_rng(2).normal(size=(3000, 2)) * [2.0, 0.5])
    p0 = init_params(spec, jax.random.PRNGKey(1), dtype=jnp.float64)
    p0["A"] = p0["A"] + 0.3 * jax.random.normal(jax.random.PRNGKey(2), p0["A"].shape, jnp.float64)
    p = data_init(spec, p0, x)
    np.testing.assert_array_equal(p["A"], p0["A"])
    ys = forward(spec, p, x).ys
    np.testing.assert_allclose(ys.mean(axis=1), 0.0, atol=1e-10)
    np.testing.assert_allclose(ys.std(axis=1), 1.0, rtol=1e-10)


def test_bad_spec():
    with pytest.raises(ValueError, match="layers"):
        FlowSpec(2, 0)
    with pytest.raises(ValueError, match="Dimension"):
        FlowSpec(0, 2)
    with pytest.raises(ValueError, match="initialisation"):
        init_params(FlowSpec(2, 2), jax.random.PRNGKey(0), init="zeros")
