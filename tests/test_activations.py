import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab.activations import ACTIVATION_NAMES, STEPS, Activation, make_activation

D = 3  # units per layer in these tests: a learned activation has parameters θ (D, n_params), one row per unit


def _theta(act, scale=1.0, seed=0, dtype=jnp.float64):
    """Random per-unit parameters around the initial ones (None for a fixed activation)."""
    if not act.learnable:
        return None
    t0 = act.init_params(D, dtype)
    return t0 + scale * jax.random.normal(jax.random.PRNGKey(seed), t0.shape, dtype)


ACTS = [make_activation("smooth_leaky_relu"), make_activation("tanh_linear"), Activation("smooth_leaky_relu", 0.01),
        make_activation("learned_leaky_relu"), make_activation("learned_steps")]
IDS = [f"{a.name}-{a.alpha}" for a in ACTS]
LEARNED = [a for a in ACTS if a.learnable]


def _slope_range(act, theta):
    """[min s', max s'] per unit, from the activation's own definition."""
    if act.name == "smooth_leaky_relu":
        return np.full(D, act.alpha), np.ones(D)
    if act.name == "tanh_linear":
        return np.full(D, act.beta), np.full(D, act.alpha + act.beta)
    t = np.asarray(theta, np.float64)
    if act.name == "learned_leaky_relu":
        return 1.0 / (1.0 + np.exp(-t[:, 0])), np.ones(D)
    rho, w, k = t[:, 0], t[:, 1:1 + STEPS], t[:, 1 + STEPS:1 + 2 * STEPS]
    return np.exp(rho), np.exp(rho) + np.exp(w + k).sum(1)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_log_deriv_finite_float32_for_large_inputs(act):
    x = jnp.asarray(np.concatenate([np.linspace(-1e4, 1e4, 2001), [-1e4, 1e4, 0.0]]), jnp.float32)
    x = jnp.broadcast_to(x[:, None], (x.shape[0], D))
    theta = _theta(act, dtype=jnp.float32)
    ld = act.log_deriv(x, theta)
    assert ld.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(ld))) and bool(jnp.all(jnp.isfinite(act(x, theta))))
    # the log-derivative is bounded by the derivative's range: [log min slope, log max slope]
    lo, hi = _slope_range(act, theta)
    assert np.all(np.asarray(ld).min(0) >= np.log(lo) - 1e-5) and np.all(np.asarray(ld).max(0) <= np.log(hi) + 1e-5)


@pytest.mark.parametrize("act", LEARNED, ids=lambda a: a.name)
def test_learned_log_deriv_finite_for_extreme_parameters(act):
    """Any θ within ±50 (what a model file may hold) keeps log s' finite in float32, even where s' itself is tiny."""
    x = jnp.asarray(np.linspace(-1e4, 1e4, 801), jnp.float32)[:, None]
    for value in (-50.0, -20.0, 20.0, 50.0):
        theta = jnp.full((1, act.n_params), value, jnp.float32)
        assert bool(jnp.all(jnp.isfinite(act.log_deriv(x, theta)))), value


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_derivatives_match_autodiff(act, x64):
    x = jnp.broadcast_to(jnp.linspace(-30.0, 30.0, 601, dtype=jnp.float64)[:, None], (601, D))
    theta = _theta(act)
    s = lambda v: jnp.sum(act(v, theta))  # noqa: E731  (elementwise: the gradient of the sum is s' per entry)
    d_auto = jax.grad(s)(x)
    d2_auto = jax.grad(lambda v: jnp.sum(jax.grad(s)(v)))(x)
    np.testing.assert_allclose(act.deriv(x, theta), d_auto, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jnp.exp(act.log_deriv(x, theta)), d_auto, rtol=1e-12)
    np.testing.assert_allclose(act.deriv2(x, theta), d2_auto, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("act", LEARNED, ids=lambda a: a.name)
def test_parameter_gradients_match_finite_differences(act, x64):
    """d/dθ of Σ s and of Σ log s' (what the flow's A-gradient is made of) by autodiff against central differences."""
    x = jax.random.normal(jax.random.PRNGKey(3), (40, D), jnp.float64) * 3
    theta = _theta(act, 0.5)
    for fn in (lambda t: jnp.sum(act(x, t)), lambda t: jnp.sum(act.log_deriv(x, t))):
        g = jax.grad(fn)(theta)
        eps = 1e-6
        for idx in [(0, 0), (1, act.n_params - 1), (2, act.n_params // 2)]:
            e = jnp.zeros_like(theta).at[idx].set(eps)
            fd = (fn(theta + e) - fn(theta - e)) / (2 * eps)
            assert abs(float(fd) - float(g[idx])) < 1e-7 * (1 + abs(float(fd))), (idx, float(fd), float(g[idx]))


@pytest.mark.parametrize("act", LEARNED, ids=lambda a: a.name)
def test_learned_activations_increase_for_any_parameters(act, x64):
    """Strictly increasing whatever θ: s' > 0 and s itself increases on a fine grid, for wild parameter draws."""
    x = jnp.broadcast_to(jnp.linspace(-20.0, 20.0, 4001)[:, None], (4001, D))
    for seed in range(5):
        theta = jax.random.normal(jax.random.PRNGKey(seed), (D, act.n_params), jnp.float64) * 3.0
        assert float(jnp.min(act.deriv(x, theta))) > 0
        assert float(jnp.min(jnp.diff(act(x, theta), axis=0))) > 0


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_inverse_round_trip(act, x64):
    theta = _theta(act)
    x = jnp.concatenate([jnp.linspace(-50.0, 50.0, 2001), jnp.array([-1e4, -123.4, 1e-7, 987.6, 1e4])])
    x = jnp.broadcast_to(x[:, None], (x.shape[0], D))
    np.testing.assert_allclose(act.inverse(act(x, theta), theta), x, rtol=1e-12, atol=1e-5)
    y = jnp.broadcast_to(jnp.linspace(-20.0, 20.0, 401)[:, None], (401, D))
    np.testing.assert_allclose(act(act.inverse(y, theta), theta), y, atol=1e-10)


@pytest.mark.parametrize("act", LEARNED, ids=lambda a: a.name)
def test_learned_inverse_for_wild_parameters(act, x64):
    """The learned steps can be very non-convex (Newton alone cycles between flat parts): the bracketed inverse still
    solves s(x) = y to rounding for large random θ."""
    for seed in range(5):
        theta = jax.random.normal(jax.random.PRNGKey(seed), (D, act.n_params), jnp.float64) * 2.0
        x = 10 * jax.random.normal(jax.random.PRNGKey(10 + seed), (500, D), jnp.float64)
        np.testing.assert_allclose(act.inverse(act(x, theta), theta), x, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_inverse_float32(act):
    theta = _theta(act, dtype=jnp.float32)
    x = jnp.broadcast_to(jnp.linspace(-20.0, 20.0, 401, dtype=jnp.float32)[:, None], (401, D))
    np.testing.assert_allclose(act.inverse(act(x, theta), theta), x, atol=1e-5 * 20)
    big = jnp.broadcast_to(jnp.asarray([-1e4, 1e4], jnp.float32)[:, None], (2, D))
    assert bool(jnp.all(jnp.isfinite(act.inverse(big, theta))))


def test_learned_leaky_relu_starts_as_the_fixed_one(x64):
    fixed, learned = make_activation("smooth_leaky_relu", 0.2), make_activation("learned_leaky_relu", 0.2)
    theta = learned.init_params(D, jnp.float64)
    assert theta.shape == (D, 1)
    x = jnp.broadcast_to(jnp.linspace(-8.0, 8.0, 161)[:, None], (161, D))
    np.testing.assert_allclose(learned(x, theta), fixed(x), rtol=1e-14)
    np.testing.assert_allclose(learned.log_deriv(x, theta), fixed.log_deriv(x), rtol=1e-12, atol=1e-14)


def test_learned_steps_start_near_tanh_linear(x64):
    """Initially: linear slope β, total step height 1 (as s_T), M distinct steps of sharpness α."""
    act = make_activation("learned_steps", alpha=1.0, beta=0.1)
    theta = act.init_params(D, jnp.float64)
    assert theta.shape == (D, 1 + 3 * STEPS)
    centres = np.asarray(theta[0, 1 + 2 * STEPS:])
    assert len(np.unique(centres)) == STEPS  # distinct: identical steps would get identical updates forever
    far = jnp.asarray([[-200.0] * D, [200.0] * D])
    np.testing.assert_allclose(act(far, theta) - 0.1 * far, [[-1.0] * D, [1.0] * D], atol=1e-12)
    x = jnp.broadcast_to(jnp.linspace(-6.0, 6.0, 121)[:, None], (121, D))
    s_t = make_activation("tanh_linear", 1.0, 0.1)
    assert float(jnp.max(jnp.abs(act(x, theta) - s_t(x)))) < 0.25  # close to s_T, not equal


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="Unknown activation"):
        make_activation("relu")
    with pytest.raises(ValueError, match="0 < alpha < 1"):
        Activation("smooth_leaky_relu", 1.5)
    with pytest.raises(ValueError, match="0 < alpha < 1"):
        make_activation("learned_leaky_relu", 0.0)
    with pytest.raises(ValueError, match="beta > 0"):
        Activation("tanh_linear", 1.0, 0.0)
    with pytest.raises(ValueError, match="needs its learned parameters"):
        make_activation("learned_steps")(jnp.ones(3))
    assert all(make_activation(n).label for n in ACTIVATION_NAMES)
    assert [make_activation(n).learnable for n in ACTIVATION_NAMES] == [False, False, True, True]


def test_every_activation_has_a_step_cost_and_the_learned_ones_cost_more():
    costs = {n: make_activation(n).step_cost for n in ACTIVATION_NAMES}
    assert costs["smooth_leaky_relu"] == costs["tanh_linear"] == 1.0
    assert 1.0 < costs["learned_leaky_relu"] < costs["learned_steps"]
