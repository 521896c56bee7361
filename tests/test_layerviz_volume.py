"""flowlab.layerviz.volume: the per-layer log-dets add up to the model's log-likelihood and match jax.jacobian, the
local log-det fields on both planes, the page's summary numbers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import layerviz as lv
from flowlab.flow import forward, log_prob, model_log_prob
from layerviz_cases import model as _model, points as _points


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


def test_plane_grid_is_row_major_in_y():
    xs, ys, pts = lv.plane_grid(((0, 1), (10, 12)), n=3)
    assert xs.tolist() == [0, 0.5, 1] and ys.tolist() == [10, 11, 12]
    assert pts[:3].tolist() == [[0, 10], [0.5, 10], [1, 10]] and pts[-1].tolist() == [1, 12]


def test_volume_summary_is_the_page_headline(x64):
    """The numbers the page's metric row shows, from the split and the model's own log q(x)."""
    spec, params, norm = _model(L=4)
    x = _points(40)
    v = lv.volume_summary(spec, params, norm, x)
    s = lv.logdet_split(spec, params, norm, x)
    np.testing.assert_allclose(v.split.act, s.act)
    assert v.mean_log_q == pytest.approx(float(np.mean(model_log_prob(spec, params, norm, x))), abs=1e-12)
    assert v.mean_logdet == pytest.approx(float(np.mean(s.total)), abs=1e-12)
    assert v.logdet_weights == pytest.approx(float(np.sum(s.weights)), abs=1e-12)
    assert v.mean_logdet_act == pytest.approx(float(np.mean(np.sum(s.act, axis=0))), abs=1e-12)
    assert v.mean_logdet == pytest.approx(s.norm + v.logdet_weights + v.mean_logdet_act, abs=1e-10)
    assert v.check < 1e-10


def test_model_log_prob_is_the_flow_one():
    assert lv.model_log_prob is model_log_prob  # one definition, re-exported
