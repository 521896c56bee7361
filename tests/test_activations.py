import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab.activations import Activation, make_activation

ACTS = [make_activation("smooth_leaky_relu"), make_activation("tanh_linear"), Activation("smooth_leaky_relu", 0.01)]


@pytest.mark.parametrize("act", ACTS, ids=lambda a: f"{a.name}-{a.alpha}")
def test_log_deriv_finite_float32_for_large_inputs(act):
    x = jnp.asarray(np.concatenate([np.linspace(-1e4, 1e4, 2001), [-1e4, 1e4, 0.0]]), jnp.float32)
    ld = act.log_deriv(x)
    assert ld.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(ld))) and bool(jnp.all(jnp.isfinite(act(x))))
    # the log-derivative is bounded by the derivative's range: [log min slope, log max slope]
    lo = np.log(act.alpha if act.name == "smooth_leaky_relu" else act.beta)
    hi = np.log(1.0 if act.name == "smooth_leaky_relu" else act.alpha + act.beta)
    assert float(ld.min()) >= lo - 1e-5 and float(ld.max()) <= hi + 1e-5


@pytest.mark.parametrize("act", ACTS, ids=lambda a: f"{a.name}-{a.alpha}")
def test_derivatives_match_autodiff(act, x64):
    x = jnp.linspace(-30.0, 30.0, 601, dtype=jnp.float64)
    d_auto = jax.vmap(jax.grad(act))(x)
    d2_auto = jax.vmap(jax.grad(jax.grad(act)))(x)
    np.testing.assert_allclose(act.deriv(x), d_auto, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jnp.exp(act.log_deriv(x)), d_auto, rtol=1e-12)
    np.testing.assert_allclose(act.deriv2(x), d2_auto, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("act", ACTS, ids=lambda a: f"{a.name}-{a.alpha}")
def test_inverse_round_trip(act, x64):
    x = jnp.concatenate([jnp.linspace(-50.0, 50.0, 2001), jnp.array([-1e4, -123.4, 1e-7, 987.6, 1e4])])
    np.testing.assert_allclose(act.inverse(act(x)), x, rtol=1e-12, atol=1e-5)
    y = jnp.linspace(-20.0, 20.0, 401)
    np.testing.assert_allclose(act(act.inverse(y)), y, atol=1e-10)


@pytest.mark.parametrize("act", ACTS, ids=lambda a: f"{a.name}-{a.alpha}")
def test_inverse_float32(act):
    x = jnp.linspace(-20.0, 20.0, 401, dtype=jnp.float32)
    np.testing.assert_allclose(act.inverse(act(x)), x, atol=1e-5 * 20)
    assert bool(jnp.all(jnp.isfinite(act.inverse(jnp.asarray([-1e4, 1e4], jnp.float32)))))


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="Unknown activation"):
        make_activation("relu")
    with pytest.raises(ValueError, match="0 < alpha < 1"):
        Activation("smooth_leaky_relu", 1.5)
    with pytest.raises(ValueError, match="beta > 0"):
        Activation("tanh_linear", 1.0, 0.0)
