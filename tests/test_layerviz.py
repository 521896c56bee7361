"""flowlab.layerviz and flowlab.plots.layers: paths through the layers agree with the forward and inverse passes, the
per-layer log-dets add up to the model's log-likelihood and match jax.jacobian, subsampling, URL settings, model
sources, and the figure builders."""
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import io as fio
from flowlab import layerviz as lv
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec, Norm, forward, init_params, inverse, log_prob
from flowlab.plots import layers as PL


def _model(L=4, act="smooth_leaky_relu", seed=0, dtype=jnp.float64):
    """A random flow whose layers really change volume (not orthogonal) with a non-trivial standardisation."""
    spec = FlowSpec(2, L, make_activation(act))
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    p = init_params(spec, k1, dtype=dtype)
    W = p["W"] * jnp.exp(0.3 * jax.random.normal(k2, (L, 1, 2), dtype)) + 0.2 * jax.random.normal(k3, (L, 2, 2), dtype)
    params = {"W": W, "b": 0.5 * jax.random.normal(k3, (L, 2), dtype)}
    norm = Norm(jnp.asarray([0.3, -0.2], dtype), jnp.asarray([1.7, 0.6], dtype))
    return spec, params, norm


def _points(n=64, seed=1):
    return np.random.default_rng(seed).normal(size=(n, 2)) * [1.5, 1.0]


# ---- paths ---------------------------------------------------------------------------------------------------------
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


def test_angle_sectors():
    z = np.array([[1, 0.1], [-0.1, 1], [-1, 0.1], [-1, -0.1], [0.1, -1], [1, -0.1]])
    assert lv.angle_sectors(z, 4).tolist() == [0, 1, 1, 2, 3, 3]
    assert len(lv.sector_names(8)) == 8 and lv.sector_names(8)[1] == "z at 45–90°"


# ---- volume change ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["smooth_leaky_relu", "tanh_linear"])
def test_per_layer_logdets_sum_to_the_model_log_det(x64, act):
    spec, params, norm = _model(L=4, act=act)
    x = _points(32)
    s = lv.logdet_split(spec, params, norm, x)
    assert s.weights.shape == (4,) and s.act.shape == (4, 32)
    assert np.all(s.act[-1] == 0)  # the last layer is affine
    z = np.asarray(forward(spec, params, jnp.asarray(x), norm).z)
    log_n = -0.5 * np.sum(z * z, 1) - np.log(2 * np.pi)
    np.testing.assert_allclose(log_n + s.total, np.asarray(log_prob(spec, params, jnp.asarray(x), norm)), atol=1e-10)
    # and against autodiff: log|det| of the full Jacobian dz/dx at each point
    fz = lambda xi: forward(spec, params, xi[None], norm).z[0]
    jac = jax.vmap(jax.jacobian(fz))(jnp.asarray(x))
    np.testing.assert_allclose(s.total, np.asarray(jnp.linalg.slogdet(jac)[1]), atol=1e-10)
    np.testing.assert_allclose(s.cumulative_mean()[-1], np.mean(s.total), atol=1e-10)
    np.testing.assert_allclose(s.mean_per_layer().sum() + s.norm, np.mean(s.total), atol=1e-10)
    assert lv.logdet_check(spec, params, norm, x) < 1e-10


def test_each_layer_logdet_matches_its_jacobian(x64):
    spec, params, norm = _model(L=4)
    x = _points(16)
    s = lv.logdet_split(spec, params, norm, x)
    hs = lv.push(spec, params, norm, x).values[1:]  # h_0 ... h_L
    act, L = spec.activation, spec.layers
    is_last = (jnp.arange(L) == L - 1)[:, None]

    def all_layers(h_in):  # (L, 2) inputs h_{k-1} -> (L, 2) outputs h_k, every layer at once
        y = jnp.einsum("lij,lj->li", params["W"], h_in) + params["b"]
        return jnp.where(is_last, y, act(y))

    J = jax.vmap(jax.jacobian(all_layers))(jnp.asarray(np.swapaxes(hs[:-1], 0, 1)))  # (B, L, 2, L, 2)
    J_layer = jnp.stack([J[:, k, :, k, :] for k in range(L)], 1)  # (B, L, 2, 2)
    want = np.asarray(jnp.linalg.slogdet(J_layer)[1]).T  # (L, B)
    np.testing.assert_allclose(s.per_layer, want, atol=1e-10)
    # x -> h_k for every k in one Jacobian
    Jc = jax.vmap(jax.jacobian(lambda xi: forward(spec, params, xi[None], norm).hs[:, 0]))(jnp.asarray(x))
    want_cum = np.asarray(jnp.linalg.slogdet(Jc)[1]).T  # (L, B)
    for k in range(1, L + 1):
        # the same number from the layer's own input plane and from the data plane
        np.testing.assert_allclose(lv.layer_logdet_at_input(spec, params, k, hs[k - 1]), want[k - 1], atol=1e-10)
        np.testing.assert_allclose(lv.local_logdet(spec, params, norm, x, k), want[k - 1], atol=1e-10)
        np.testing.assert_allclose(lv.local_logdet(spec, params, norm, x, k, cumulative=True), want_cum[k - 1],
                                   atol=1e-10)
    with pytest.raises(ValueError, match="between 1 and 4"):
        lv.local_logdet(spec, params, norm, x, 5)
    with pytest.raises(ValueError, match="between 1 and 4"):
        lv.layer_logdet_at_input(spec, params, 0, x)


def test_logdet_field_on_both_planes(x64):
    spec, params, norm = _model(L=4)
    x = _points(50)
    f = lv.logdet_field(spec, params, norm, 2, x, plot_range=((-2, 2), (-1, 3)), n=12)
    assert f.z.shape == (12, 12) and f.plane == "x" and f.xs[0] == -2 and f.ys[-1] == 3
    pts = np.stack(np.meshgrid(f.xs, f.ys), -1).reshape(-1, 2)
    np.testing.assert_allclose(f.z.ravel(), lv.local_logdet(spec, params, norm, pts, 2), atol=1e-12)
    g = lv.logdet_field(spec, params, norm, 2, x, n=10, plane="input")
    h1 = lv.push(spec, params, norm, x).values[2]  # h_1: layer 2's input
    np.testing.assert_allclose(g.points, h1, atol=1e-12)
    gp = np.stack(np.meshgrid(g.xs, g.ys), -1).reshape(-1, 2)
    np.testing.assert_allclose(g.z.ravel(), lv.layer_logdet_at_input(spec, params, 2, gp), atol=1e-12)
    last = lv.logdet_field(spec, params, norm, 4, x, n=6)  # affine last layer: constant log|det W_L|
    np.testing.assert_allclose(last.z, float(jnp.linalg.slogdet(params["W"][3])[1]), atol=1e-12)
    with pytest.raises(ValueError, match="plane"):
        lv.logdet_field(spec, params, norm, 1, x, plane="z")


def test_float32_model_works_without_x64():
    spec, params, norm = _model(L=4, dtype=jnp.float32)
    x = _points(20)
    assert lv.push(spec, params, norm, x).values.dtype == np.float32
    assert lv.logdet_check(spec, params, norm, x) < 1e-3
    assert not jax.config.jax_enable_x64  # nothing flipped the global setting


# ---- subsampling, ranges ---------------------------------------------------------------------------------------------
def test_pick_depths_and_notes():
    assert lv.pick_depths(10, 12) == list(range(11))
    d = lv.pick_depths(100, 12)
    assert d[0] == 0 and d[-1] == 100 and len(d) <= 12 and d == sorted(set(d))
    assert set(np.diff(d[:-1])) == {10}
    for L in (49, 50, 63, 100, 200):
        for m in (6, 12, 26, 50):
            d = lv.pick_depths(L, m)
            assert d[0] == 0 and d[-1] == L and len(d) <= m and np.all(np.diff(d) > 0), (L, m)
    assert lv.view_depths(49, lv.MAX_FRAMES) == (list(range(50)), None)  # below 50 layers: every layer animated
    d, note = lv.view_depths(100, lv.MAX_FRAMES)
    assert len(d) <= lv.MAX_FRAMES and "every 3rd layer" in note and "100 layers" in note
    with pytest.raises(ValueError):
        lv.pick_depths(5, 1)


def test_select_stages_keeps_pre_activation_with_its_layer(x64):
    spec, params, norm = _model(L=4)
    p = lv.push(spec, params, norm, _points(5), split=True)
    s = lv.select_stages(p, [0, 2, 4])
    assert s.kind == ("x", "h0", "pre", "out", "z") and s.layer == (0, 0, 2, 2, 4)
    assert lv.without_kind(s, "h0").kind == ("x", "pre", "out", "z")
    g = lv.select_stages(lv.pull(spec, params, norm, _points(5)), [4, 2, 0])
    assert g.kind == ("z", "out", "h0", "x")


def test_square_range_and_subsample():
    pts = np.random.default_rng(0).normal(size=(500, 2)) * [4, 1]
    (x0, x1), (y0, y1) = lv.square_range(pts)
    assert np.isclose(x1 - x0, y1 - y0) and x0 < -4 and x1 > 4
    assert lv.square_range(np.full((3, 2), np.nan)) == ((-1.0, 1.0), (-1.0, 1.0))
    a, b = lv.subsample(1000, 100, seed=4), lv.subsample(1000, 100, seed=4)
    assert len(a) == 100 and np.all(np.diff(a) > 0) and np.array_equal(a, b)
    assert np.array_equal(lv.subsample(50, 100), np.arange(50))


# ---- URL settings -----------------------------------------------------------------------------------------------
def test_settings_from_query():
    s, notes = lv.settings_from_query({})
    assert s == {"density": lv.DEFAULT_DENSITY, "layers": lv.DEFAULT_LAYERS} and notes == []
    s, notes = lv.settings_from_query({"density": "banana", "layers": ["3", "4"]})
    assert s == {"density": "banana", "layers": 4} and notes == []
    s, notes = lv.settings_from_query({"density": "unicorn", "layers": "2.5"})
    assert s == {"density": lv.DEFAULT_DENSITY, "layers": lv.DEFAULT_LAYERS}
    assert len(notes) == 2 and "'unicorn'" in notes[0] and "'2.5'" in notes[1]
    _, notes = lv.settings_from_query({"layers": "500"})
    assert "between 1 and 100" in notes[0]
    _, notes = lv.settings_from_query({"layers": "1e999"})
    assert "not an integer" in notes[0]


# ---- model sources ---------------------------------------------------------------------------------------------------
def _session_dict(L=4, **over):
    spec, params, norm = _model(L=L, dtype=jnp.float32)
    x, lab = np.random.default_rng(0).normal(size=(1500, 2)), np.arange(1500) % 3
    d = {"spec": spec, "params": params, "norm": norm, "density": "trimodal", "data": x, "labels": lab,
         "method": "relative", "source": "playground"}
    d.update(over)
    return d


def test_model_from_session():
    m = lv.model_from_session(_session_dict())
    assert m.source == "playground" and m.density == "trimodal" and len(m.data) == lv.N_POINTS
    assert m.labels.shape == (lv.N_POINTS,) and m.label_noun == "mode"
    assert lv.model_from_session(_session_dict(density=None, labels=None)).labels is None
    with pytest.raises(ValueError, match="lacks data"):
        lv.model_from_session({k: v for k, v in _session_dict().items() if k != "data"})
    bad = _session_dict()
    bad["params"] = {**bad["params"], "W": bad["params"]["W"].at[0, 0, 0].set(jnp.nan)}
    with pytest.raises(ValueError, match="NaN"):
        lv.model_from_session(bad)
    with pytest.raises(ValueError, match="dict"):
        lv.model_from_session("nope")


def test_model_from_file_good_bad_and_not_2d():
    spec, params, norm = _model(L=4, dtype=jnp.float32)
    raw = fio.model_bytes(spec, params, norm, {"density": "pinwheel", "method": "exact", "steps": 400})
    m = lv.model_from_file(raw, n_points=300)
    assert m.source == "file" and m.density == "pinwheel" and m.data.shape == (300, 2) and m.label_noun == "arm"
    np.testing.assert_array_equal(np.asarray(m.params["W"]), np.asarray(params["W"]))
    assert "400" in m.note
    m2 = lv.model_from_file(fio.model_bytes(spec, params, norm), n_points=200)  # no density: sample the flow
    assert m2.density is None and m2.label_noun == lv.ANGLE_NOUN and len(m2.data) == 200
    assert lv.label_names(None, m2.labels, m2.label_noun)[0] == "z at 0–45°"
    with pytest.raises(ValueError, match="Not a FlowLab model file"):
        lv.model_from_file(b"this is not a zip archive")
    spec3 = FlowSpec(3, 2)
    p3 = init_params(spec3, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="3-dimensional"):
        lv.model_from_file(fio.model_bytes(spec3, p3))


def test_train_small_is_quick_and_labelled(monkeypatch):
    m = lv.train_small("moons", 2, steps=40, n_points=120)
    assert m.source == "trained" and m.spec.layers == 2 and m.data.shape == (120, 2)
    assert set(np.unique(m.labels)) == {0, 1} and "40 steps" in m.note
    assert lv.small_steps(8) == lv.SMALL_STEPS and 600 <= lv.small_steps(100) < lv.SMALL_STEPS


def test_no_streamlit_in_flowlab():
    code = ("import sys, flowlab.layerviz, flowlab.plots.layers; "
            "assert 'streamlit' not in sys.modules, 'flowlab must not import streamlit'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=lv.__file__.rsplit("/flowlab/", 1)[0])


# ---- figures -----------------------------------------------------------------------------------------------------
def test_animation_figure_frames_follow_the_layers():
    spec, params, norm = _model(L=4, dtype=jnp.float32)
    x, lab = _points(60), np.arange(60) % 3
    grid = lv.cartesian_lines(lv.square_range(x), 5, 10)
    p, g = lv.push(spec, params, norm, x), lv.push_lines(spec, params, norm, grid)
    names = lv.label_names("trimodal", lab)
    fig = PL.animation_figure(p, g, 5, lab, names, follow=True)
    n = len(p.names)
    assert len(fig.frames) == n and len(fig.layout.sliders[0].steps) == n
    assert [s.label for s in fig.layout.sliders[0].steps] == ["x", "h₀", "h₁", "h₂", "h₃", "z"]
    assert len(fig.data) == 2 + 3 and [t.name for t in fig.data[2:]] == ["mode 1", "mode 2", "mode 3"]
    assert all(len(fr.data) == len(fig.data) for fr in fig.frames)
    last = fig.frames[-1]
    np.testing.assert_allclose(np.asarray(last.data[3].x), p.values[-1][lab == 1, 0], rtol=1e-6)
    ranges = [tuple(fr.layout.xaxis.range) for fr in fig.frames]
    assert len(set(ranges)) > 1  # axes follow each stage
    fixed = PL.animation_figure(p, g, 5, lab, names, follow=False)
    assert len({tuple(fr.layout.xaxis.range) for fr in fixed.frames}) == 1
    # grid lines: the NaN breaks separate the 5 lines of each family
    assert np.sum(np.isnan(np.asarray(fig.data[0].x, float))) == 5


def test_stages_figure_panels_and_zoom_titles():
    spec, params, norm = _model(L=4, dtype=jnp.float32)
    x = _points(40)
    p = lv.without_kind(lv.push(spec, params, norm, x), "h0")
    fig = PL.stages_figure(p, None, 0, None, None, cols=2)
    assert len([a for a in fig.layout.annotations if "view" in a.text]) == len(p.names) == 5
    assert fig.layout.annotations[0].text.startswith("x (data)") and "1×" in fig.layout.annotations[0].text
    assert len(fig.data) == 5 * 3 and fig.data[2].showlegend and not fig.data[5].showlegend


def test_volume_figures():
    spec, params, norm = _model(L=4, dtype=jnp.float32)
    x = _points(80)
    s = lv.logdet_split(spec, params, norm, x)
    fig = PL.logdet_depth_figure(s)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 2 and fig.layout.barmode == "relative"
    np.testing.assert_allclose(np.asarray(bars[0].y) + np.asarray(bars[1].y), s.mean_per_layer(), rtol=1e-6)
    cum = next(t for t in fig.data if t.name and t.name.startswith("mean log|det"))
    np.testing.assert_allclose(np.asarray(cum.y), s.cumulative_mean(), rtol=1e-5, atol=1e-6)
    f = lv.logdet_field(spec, params, norm, 2, x, n=20)
    hf = PL.logdet_field_figure(f, "t")
    assert hf.data[0].zmid == 0 and hf.data[0].zmax == -hf.data[0].zmin
