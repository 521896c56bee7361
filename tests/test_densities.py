import math

import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import densities as D
from flowlab.layerviz.grids import plane_grid as grid

NAMES = D.names()


def test_registry_has_the_paper_three_first_and_the_others():
    assert NAMES[:3] == ["trimodal", "moons", "sine"]
    assert D.PAPER_DENSITIES == ("trimodal", "moons", "sine")
    for name in ["eight_gaussians", "rings", "two_spirals", "checkerboard", "pinwheel", "banana"]:
        assert name in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_integrates_to_one_on_its_plot_range(name, x64):
    d = D.get_density(name)
    (x0, x1), (y0, y1) = d.plot_range
    n = 500
    # cell centres of an n x n grid
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    X, Y = np.meshgrid(xs, ys)
    lp = np.asarray(d.log_prob(jnp.asarray(np.stack([X.ravel(), Y.ravel()], 1))))
    mass = np.sum(np.exp(lp)) * (x1 - x0) * (y1 - y0) / n**2
    assert abs(mass - 1.0) < 1e-2, mass


@pytest.mark.parametrize("name", NAMES)
def test_sampler_matches_log_density(name):
    """Histogram of 200k samples vs the density's mass per cell: total variation < 0.03 (sampling noise here is
    below ~0.015; a wrong width, centre or weight moves it far above)."""
    d = D.get_density(name)
    x = d.sample(200_000, seed=7)
    (x0, x1), (y0, y1) = d.plot_range
    bins, sub = 16, 24
    hist, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=bins, range=[[x0, x1], [y0, y1]])
    emp = hist / len(x)
    # model mass per bin: midpoint rule on sub x sub points per bin
    m = bins * sub
    xs = x0 + (np.arange(m) + 0.5) * (x1 - x0) / m
    ys = y0 + (np.arange(m) + 0.5) * (y1 - y0) / m
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    p = np.exp(np.asarray(d.log_prob(np.stack([X.ravel(), Y.ravel()], 1).astype(np.float32)), np.float64))
    mass = p.reshape(bins, sub, bins, sub).sum(axis=(1, 3)) * (x1 - x0) * (y1 - y0) / m**2
    tv = 0.5 * np.abs(emp - mass).sum()
    assert tv < 0.03, tv


def test_sampler_is_reproducible_and_labelled():
    d = D.get_density("moons")
    a, la = d.sample_labeled(500, seed=3)
    b, lb = d.sample_labeled(500, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert set(np.unique(la)) == {0, 1}
    assert not np.array_equal(a, d.sample(500, seed=4))
    # label 0 = outer arc: points at distance ~1 from the origin
    r = np.linalg.norm(a[la == 0], axis=1)
    assert abs(np.median(r) - 1.0) < 0.05


def test_paper_definitions():
    x, lab = D.get_density("trimodal").sample_labeled(60_000, seed=1)
    for k, (mu, sd) in enumerate(zip([(0, 0), (5, 5), (5, -5)], [1.0, 0.5, 0.5])):
        pts = x[lab == k]
        assert abs(len(pts) / len(x) - 1 / 3) < 0.01
        np.testing.assert_allclose(pts.mean(0), mu, atol=0.03)
        np.testing.assert_allclose(pts.std(0), sd, rtol=0.03)
    s = D.get_density("sine").sample(60_000, seed=2)
    assert s[:, 0].min() >= -2 and s[:, 0].max() <= 2
    np.testing.assert_allclose(np.std(s[:, 1] - np.sin(3 * s[:, 0])), 0.25, rtol=0.02)
    m, lab = D.get_density("moons").sample_labeled(60_000, seed=3)
    inner = m[lab == 1]
    # inner arc (1 - cos t, 1 - sin t - 0.5): centred at (1, 0.5) with radius 1, lower half
    np.testing.assert_allclose(np.median(np.linalg.norm(inner - [1.0, 0.5], axis=1)), 1.0, atol=0.01)
    assert np.mean(inner[:, 1] < 0.5 + 0.1) > 0.99


@pytest.mark.parametrize("name", ["moons", "two_spirals"])
def test_quadrature_converged(name, x64):
    """The curve densities' quadrature agrees with 8x more panels to 1e-3 nats (the requirement) near the data."""
    d = D.get_density(name)
    x = jnp.asarray(d.sample(3000, seed=5))
    lp = d.log_prob(x)
    if name == "moons":
        a = D._curve_log_prob(x, D._outer, 0.0, math.pi, D._MOON_STD, panels=384)
        b = D._curve_log_prob(x, D._inner, 0.0, math.pi, D._MOON_STD, panels=384)
    else:
        a = D._curve_log_prob(x, D._spiral(1.0), *D._SPIRAL_T, D._SPIRAL_STD, panels=1280)
        b = D._curve_log_prob(x, D._spiral(-1.0), *D._SPIRAL_T, D._SPIRAL_STD, panels=1280)
    ref = jnp.logaddexp(a, b) - math.log(2.0)
    assert float(jnp.max(jnp.abs(lp - ref))) < 1e-3


def test_entropy_matches_closed_forms():
    """Each closed form from the density's definition, written out here independently of flowlab."""
    # sine: x1 ~ U[-2, 2] (log 4) and x2 | x1 ~ N(sin 3x1, 0.25^2) (1/2 log(2 pi e 0.0625))
    assert D.get_density("sine").entropy() == pytest.approx(math.log(4) + 0.5 * math.log(2 * math.pi * math.e *
                                                                                           0.0625), abs=1e-12)
    assert D.get_density("sine").entropy() == pytest.approx(1.41894, abs=5e-6)
    assert D.get_density("checkerboard").entropy() == pytest.approx(math.log(32), abs=1e-12)  # uniform on area 32
    # banana: (x1, x2 - 0.4 x1^2 + 2) has unit Jacobian and gives N(0, 1.2^2) x N(0, 0.5^2)
    h_banana = 0.5 * math.log(2 * math.pi * math.e * 1.44) + 0.5 * math.log(2 * math.pi * math.e * 0.25)
    assert D.get_density("banana").entropy() == pytest.approx(h_banana, abs=1e-12)


@pytest.mark.parametrize("name", list(D.GRID_ENTROPY))
def test_cached_grid_entropies_are_the_quadrature_at_twice_the_step(name, x64):
    """The cached values were computed at the box's step; the midpoint rule at twice the step agrees to 1e-8 nats
    (geometric convergence), which both re-derives the cache and bounds its discretisation error."""
    coarse = D.grid_entropy(name, step=2 * D.GRID_BOX[name][1])
    assert coarse == pytest.approx(D.GRID_ENTROPY[name], abs=1e-8)
    assert D.get_density(name).entropy() == D.GRID_ENTROPY[name]


def test_grid_box_holds_all_the_mass(x64):
    """The quadrature boxes lose no mass: the midpoint rule integrates p to 1 within 1e-9."""
    for name, ((x0, x1), (y0, y1)) in ((n, b) for n, (b, _) in D.GRID_BOX.items()):
        h = 2 * D.GRID_BOX[name][1]
        xs, ys = np.arange(x0 + h / 2, x1, h), np.arange(y0 + h / 2, y1, h)
        pts = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        mass = float(np.sum(np.exp(np.asarray(D.get_density(name).log_prob(jnp.asarray(pts)))))) * h * h
        assert mass == pytest.approx(1.0, abs=1e-9), name


def test_quoted_entropies():
    """The values quoted in issue 17 (quadrature / closed form) and the pinwheel and rings values."""
    assert D.get_density("trimodal").entropy() == pytest.approx(3.01229, abs=5e-6)
    assert D.get_density("moons").entropy() == pytest.approx(0.28923, abs=5e-6)
    assert D.get_density("rings").entropy() == pytest.approx(2.745219, abs=1e-5)  # float32 log_prob in the app
    assert D.get_density("pinwheel").entropy() == pytest.approx(2.0027518, abs=1e-6)


def test_rings_and_pinwheel_entropies_agree_with_2d_quadrature(x64):
    """The 1-D reductions (radius for rings; Gamma closed form + angle quadrature for pinwheel) against the plain
    2-D midpoint rule of the registry log-density.  The pinwheel's density is not smooth at the origin and has a
    Gamma tail, so its 2-D rule is only good to ~1e-5 there; the rings value may have been cached from float32
    evaluations (2e-8 off)."""
    for name, box, h, tol in (("rings", ((-4.3, 4.3), (-4.3, 4.3)), 0.01, 1e-7),
                              ("pinwheel", ((-7.0, 7.0), (-7.0, 7.0)), 0.01, 2e-5)):
        (x0, x1), (y0, y1) = box
        xs, ys = np.arange(x0 + h / 2, x1, h), np.arange(y0 + h / 2, y1, h)
        pts = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        lp = np.asarray(D.get_density(name).log_prob(jnp.asarray(pts)))
        h2 = float(-np.sum(np.where(np.isfinite(lp), np.exp(lp) * lp, 0.0)) * h * h)
        assert h2 == pytest.approx(D.get_density(name).entropy(), abs=tol), name


@pytest.mark.parametrize("name", NAMES)
def test_entropy_agrees_with_monte_carlo(name):
    """A 200 000-sample Monte Carlo estimate lies within 4 standard errors of the exact / quadrature entropy."""
    d = D.get_density(name)
    mc, se = D.mc_entropy(d, 200_000, seed=2024)
    assert abs(mc - d.entropy()) <= 4 * se + 1e-6, (mc, se, d.entropy())


def test_log_prob_outside_support_is_minus_inf():
    assert np.isneginf(np.asarray(D.get_density("sine").log_prob(np.array([[3.0, 0.0]]))))[0]
    assert np.isneginf(np.asarray(D.get_density("checkerboard").log_prob(np.array([[-3.0, 3.0]]))))[0]


def test_bad_input():
    with pytest.raises(ValueError, match="Unknown density 'nope'"):
        D.get_density("nope")
    with pytest.raises(ValueError, match="positive"):
        D.get_density("moons").sample(0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        D.get_density("moons").log_prob(np.zeros((3, 3)))


def test_grid_helper_covers_plot_range():
    xs, ys, pts = grid(((-1, 1), (0, 2)), 5)
    assert pts.shape == (25, 2) and xs[0] == -1 and ys[-1] == 2
