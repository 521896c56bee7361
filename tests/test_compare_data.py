"""flowlab.compare.data: the high-dimensional mixture density (normalised, exact per component, random rotations)
and the experiment's points."""
import math

import numpy as np

from flowlab.compare import CompareSettings, MixtureND, make_data, mixture_nd
from flowlab.settings import COMPARE_ND


def test_mixture_nd_log_prob_is_normalised_and_matches_one_component():
    d = mixture_nd(3, seed=1)
    # Monte Carlo: E_p[1] via importance sampling from a wide Gaussian
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200_000, 3)) * 4.0
    logq = -0.5 * np.sum((z / 4.0) ** 2, 1) - 3 * math.log(4.0) - 1.5 * math.log(2 * math.pi)
    mass = np.mean(np.exp(d.log_prob(z) - logq))
    assert abs(mass - 1.0) < 0.03
    one = MixtureND(d.means[:1], d.rots[:1], d.scales[:1])
    x = one.sample(5, seed=0)
    cov = d.rots[0] @ np.diag(d.scales[0] ** 2) @ d.rots[0].T
    diff = x - d.means[0]
    want = (-0.5 * np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff) - 0.5 * np.linalg.slogdet(cov)[1]
            - 1.5 * math.log(2 * math.pi))
    np.testing.assert_allclose(one.log_prob(x), want, rtol=1e-10)


def test_mixture_nd_is_deterministic_with_orthogonal_rotations():
    a, b = mixture_nd(5, seed=2), mixture_nd(5, seed=2)
    np.testing.assert_array_equal(a.rots, b.rots)
    np.testing.assert_allclose(np.einsum("kij,kil->kjl", a.rots, a.rots), np.broadcast_to(np.eye(5), (4, 5, 5)),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(a.means, axis=1), 4.0)
    assert not np.allclose(mixture_nd(5, seed=3).means, a.means)


def test_make_data_shapes_and_true_nll():
    x, nll = make_data(CompareSettings(points=50))
    assert x.shape == (50, 2) and x.dtype == np.float64 and np.isfinite(nll)
    x, nll = make_data(CompareSettings(density=COMPARE_ND, dim=12, points=60, seed=1))
    assert x.shape == (60, 12)
    np.testing.assert_allclose(nll, -np.mean(mixture_nd(12, 1).log_prob(x)))


def test_sampling_and_density_stay_small_at_large_sizes():
    """Issue 16: sample() built an (N, D, D) stack of rotations (2.6 GB at N = 20 000, D = 128).  Now its
    temporaries are a few (N, D) arrays and log_prob's are per block of rows; the points are those of
    x = μ_k + Q_k (s_k ⊙ ε) all the same."""
    import tracemalloc

    d = mixture_nd(128, seed=0)
    n = 5000
    tracemalloc.start()
    x = d.sample(n, seed=1)
    lp = d.log_prob(x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 12 * n * 128 * 8, peak  # the old stack alone was n·D²·8 = 655 MB
    assert x.shape == (n, 128) and np.all(np.isfinite(lp))
    rng = np.random.default_rng(1)  # the same draws, the old way (one rotation per row)
    k = rng.integers(0, 4, size=50)
    z = rng.standard_normal((50, 128)) * d.scales[k]
    old = d.means[k] + np.einsum("nj,nij->ni", z, d.rots[k])
    np.testing.assert_allclose(d.sample(50, seed=1), old, rtol=1e-12, atol=1e-12)
    # log_prob over more than one block of rows equals the formula on all rows at once
    small = mixture_nd(3, seed=0)
    pts = small.sample(2 * 2048 + 5, seed=2)
    u = (np.einsum("nd,kdj->knj", pts, small.rots) - np.einsum("kd,kdj->kj", small.means, small.rots)[:, None, :])
    u = u / small.scales[:, None, :]
    comp = (-0.5 * np.sum(u * u, axis=-1) - np.sum(np.log(small.scales), axis=-1)[:, None]
            - 1.5 * math.log(2 * math.pi) - math.log(4))
    want = np.log(np.sum(np.exp(comp), axis=0))
    np.testing.assert_allclose(small.log_prob(pts), want, rtol=1e-10)


def test_text_points_on_an_empty_pixel_are_replaced_so_the_true_nll_stays_finite(monkeypatch):
    """A float32 point can round onto an empty pixel next to the ink (log p = −inf); such points are dropped for the
    next of the spare samples, in order, and the true NLL is −mean log p of the points kept."""
    import dataclasses

    import jax.numpy as jnp

    from flowlab.compare import data
    from flowlab.custom_densities import text_density

    real = text_density("Hi")
    x_all = real.sample(40 + data.SPARE, seed=0)
    lp_all = np.asarray(real.log_prob(x_all.astype(np.float32)), np.float64)
    lost = np.zeros(len(x_all), bool)
    lost[[0, 5]] = True  # pretend these two rounded onto an empty pixel
    lost_at = jnp.asarray(x_all[lost].astype(np.float32))

    def log_prob(x):
        hit = jnp.any(jnp.all(x[:, None, :] == lost_at[None], axis=-1), axis=1)
        return jnp.where(hit, -jnp.inf, real.log_prob_fn(x))

    monkeypatch.setattr(data, "text_density", lambda t: dataclasses.replace(real, log_prob_fn=log_prob))
    x, nll = make_data(CompareSettings(density="text", text="Hi", points=40))
    keep = np.flatnonzero(~lost)[:40]
    np.testing.assert_array_equal(x, x_all[keep])
    assert math.isfinite(nll) and abs(nll + np.mean(lp_all[keep])) < 1e-9
