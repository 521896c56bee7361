"""flowlab.layerviz.paths and grids: paths through the layers agree with the forward and inverse passes, grid lines
move exactly like points, base points are sorted into angle sectors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import layerviz as lv
from flowlab.flow import forward, inverse
from layerviz_cases import model as _model, points as _points


@pytest.mark.parametrize("act", ["smooth_leaky_relu", "tanh_linear"])
def test_push_stages_are_the_forward_intermediates(x64, act):
    spec, params, norm = _model(act=act)
    x = _points()
    f = forward(spec, params, jnp.asarray(x), norm)
    p = lv.push(spec, params, norm, x)
    L = spec.layers
    assert p.kind == ("x", "h0") + ("out",) * (L - 1) + ("z",)
    assert p.depth == (0, 0) + tuple(range(1, L + 1))
    np.testing.assert_allclose(p.values[0], x, rtol=0, atol=0)
    np.testing.assert_allclose(p.values[1], np.asarray(f.h0), atol=1e-12)
    np.testing.assert_allclose(p.values[2:], np.asarray(f.hs), atol=1e-12)
    np.testing.assert_allclose(p.values[-1], np.asarray(f.z), atol=1e-12)
    # split: y_k is the affine image of h_{k-1}, h_k = s(y_k)
    s = lv.push(spec, params, norm, x, split=True)
    assert s.kind.count("pre") == L - 1 and s.names[-1].startswith("z")
    for i, kind in enumerate(s.kind):
        if kind == "pre":
            k = s.layer[i]
            h_prev = s.values[i - 1]
            np.testing.assert_allclose(s.values[i], h_prev @ np.asarray(params["W"][k - 1]).T +
                                       np.asarray(params["b"][k - 1]), atol=1e-12)
            np.testing.assert_allclose(s.values[i + 1], np.asarray(spec.activation(jnp.asarray(s.values[i]))),
                                       atol=1e-12)


def test_more_points_than_one_block(x64):
    """Points beyond one fixed-size block (flow.BLOCK) come back in order, padding cut off."""
    spec, params, norm = _model(L=2)
    x = _points(5000, seed=3)
    p = lv.push(spec, params, norm, x)
    assert p.values.shape == (len(p.names), 5000, 2)
    np.testing.assert_allclose(p.values[-1], np.asarray(forward(spec, params, jnp.asarray(x), norm).z), atol=1e-12)


def test_grid_lines_move_exactly_like_points(x64):
    spec, params, norm = _model()
    lines = lv.cartesian_lines(((-2, 3), (-1, 2)), n_lines=5, n_pts=7)
    assert lines.shape == (10, 7, 2)
    assert np.allclose(lines[:5, :, 0], lines[:5, :1, 0])  # first family: constant x1
    pl = lv.push_lines(spec, params, norm, lines, split=True)
    f = forward(spec, params, jnp.asarray(lines.reshape(-1, 2)), norm)
    assert pl.values.shape == (len(pl.names), 10, 7, 2)
    np.testing.assert_allclose(pl.values[-1].reshape(-1, 2), np.asarray(f.z), atol=1e-12)
    # each grid point, pushed on its own, lands where the grid put it
    one = lv.push(spec, params, norm, lines[3, 4][None], split=True)
    np.testing.assert_allclose(pl.values[:, 3, 4], one.values[:, 0], atol=1e-12)
    polar = lv.polar_lines(radii=(1.0, 2.0), n_rays=4, r_max=2.0, n_pts=9)
    np.testing.assert_allclose(np.linalg.norm(polar[1], axis=-1), 2.0)
    gl = lv.pull_lines(spec, params, norm, polar)
    np.testing.assert_allclose(gl.values[-1].reshape(-1, 2),
                               np.asarray(inverse(spec, params, jnp.asarray(polar.reshape(-1, 2)), norm)), atol=1e-10)


def test_pull_round_trips_and_mirrors_push(x64):
    spec, params, norm = _model(L=4)
    z = np.random.default_rng(3).normal(size=(40, 2))
    g = lv.pull(spec, params, norm, z)
    L = spec.layers
    assert g.kind[0] == "z" and g.kind[-1] == "x" and g.depth == (L,) + tuple(range(L - 1, -1, -1)) + (0,)
    x = g.values[-1]
    np.testing.assert_allclose(x, np.asarray(inverse(spec, params, jnp.asarray(z), norm)), atol=1e-10)
    p = lv.push(spec, params, norm, x)
    np.testing.assert_allclose(p.values[-1], z, atol=1e-9)  # x -> z -> x round trip
    # pulling back visits the same intermediates as pushing forward, in reverse: h_L ... h_0, x
    np.testing.assert_allclose(g.values[::-1], p.values, atol=1e-9)
    # without a standardisation the last stage is h_0 = x
    g0 = lv.pull(spec, params, None, z)
    assert g0.kind[-1] == "x" and len(g0.names) == L + 1


def test_points_must_be_a_matrix():
    spec, params, norm = _model(L=2, dtype=jnp.float32)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        lv.push(spec, params, norm, np.zeros(3))


def test_angle_sectors():
    z = np.array([[1, 0.1], [-0.1, 1], [-1, 0.1], [-1, -0.1], [0.1, -1], [1, -0.1]])
    assert lv.angle_sectors(z, 4).tolist() == [0, 1, 1, 2, 3, 3]
    assert len(lv.sector_names(8)) == 8 and lv.sector_names(8)[1] == "z at 45–90°"


def test_subscripts_and_stage_names():
    assert lv.sub(12) == "₁₂"
    spec, params, norm = _model(L=2, dtype=jnp.float32)
    p = lv.push(spec, params, norm, _points(3), split=True)
    assert p.names == ("x (data)", "h₀ (standardised)", "y₁ = W₁h₀ + b₁", "h₁ = s(y₁)", "z = h₂")


def test_float32_model_works_without_x64():
    spec, params, norm = _model(L=4, dtype=jnp.float32)
    x = _points(20)
    assert lv.push(spec, params, norm, x).values.dtype == np.float32
    assert lv.logdet_check(spec, params, norm, x) < 1e-3
    assert not jax.config.jax_enable_x64  # nothing flipped the global setting
