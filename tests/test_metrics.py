"""flowlab.metrics: the paired KL estimate (the one function every KL figure uses) and the angle."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import metrics as M
from flowlab import theory as T


def _gauss_logpdf(x, mu, sd):
    return -0.5 * np.sum(((x - mu) / sd) ** 2, axis=1) - x.shape[1] * (0.5 * M.LOG2PI + math.log(sd))


def test_paired_kl_matches_the_closed_form_for_gaussians():
    """KL(N(0, I) ‖ N(μ, σ²I)) in closed form (theory.kl_gaussians) lies within 4 standard errors of the paired
    estimate, and the standard error is std(log p − log q) / √n."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40_000, 2))
    mu, sd = np.array([0.3, -0.2]), 1.2
    lp, lq = _gauss_logpdf(x, 0.0, 1.0), _gauss_logpdf(x, mu, sd)
    kl, se = M.paired_kl(lp, lq)
    exact = T.kl_gaussians(np.zeros(2), np.eye(2), mu, sd**2 * np.eye(2))
    assert abs(kl - exact) < 4 * se
    assert se == pytest.approx(np.std(lp - lq) / math.sqrt(len(x)), rel=1e-12)


def test_paired_kl_is_tighter_than_nll_minus_entropy_when_q_is_close():
    """Same points, q close to p: the paired error is far below that of test NLL − H(p) (whose error is the sampling
    error of −mean log q).  This is why every KL FlowLab shows is paired."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20_000, 2))
    lp, lq = _gauss_logpdf(x, 0.0, 1.0), _gauss_logpdf(x, np.array([0.05, 0.0]), 1.02)
    _, se_paired = M.paired_kl(lp, lq)
    se_unpaired = np.std(lq) / math.sqrt(len(x))
    assert se_paired < 0.1 * se_unpaired


def test_paired_kl_zero_for_identical_densities_and_jax_version():
    lp = np.linspace(-3.0, 0.0, 11)
    assert M.paired_kl(lp, lp) == (0.0, 0.0)
    kl, se = M.paired_kl(jnp.asarray(lp), jnp.asarray(lp - 0.5), jnp)
    assert float(kl) == pytest.approx(0.5) and float(se) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="at least one point"):
        M.paired_kl([], [])


def test_angle_degrees_resolves_small_and_opposite_directions(x64):
    a = np.array([1.0, 0.0])
    for theta in (1e-10, 0.5, math.pi - 1e-9):
        b = np.array([math.cos(theta), math.sin(theta)])
        assert float(M.angle_degrees(a, b, np)) == pytest.approx(math.degrees(theta), rel=1e-6)
