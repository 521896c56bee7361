"""Small random flows and point sets shared by the tests of flowlab.layerviz and flowlab.plots.layers."""
import jax
import jax.numpy as jnp
import numpy as np

from flowlab.activations import make_activation
from flowlab.flow import FlowSpec, Norm, init_params


def model(L=4, act="smooth_leaky_relu", seed=0, dtype=jnp.float64):
    """A random flow whose layers really change volume (not orthogonal) with a non-trivial standardisation."""
    spec = FlowSpec(2, L, make_activation(act))
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    p = init_params(spec, k1, dtype=dtype)
    W = p["W"] * jnp.exp(0.3 * jax.random.normal(k2, (L, 1, 2), dtype)) + 0.2 * jax.random.normal(k3, (L, 2, 2), dtype)
    params = {"W": W, "b": 0.5 * jax.random.normal(k3, (L, 2), dtype)}
    norm = Norm(jnp.asarray([0.3, -0.2], dtype), jnp.asarray([1.7, 0.6], dtype))
    return spec, params, norm


def points(n=64, seed=1):
    return np.random.default_rng(seed).normal(size=(n, 2)) * [1.5, 1.0]
