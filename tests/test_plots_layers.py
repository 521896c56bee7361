"""flowlab.plots.layers: what the log-det field's colours mean (issue 17).  By log q(x) = log N(z) + Σ_k (layer k's
log|det|), a positive log-det adds to log q: red (the top of the diverging scale) must be described as raising q."""
import math
import re

import jax.numpy as jnp
import numpy as np

from flowlab import layerviz as lv
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec, log_prob
from flowlab.metrics import log_normal
from flowlab.plots import layers as PL
from layerviz_cases import model as _model, points as _points


def _rgb(c):
    return tuple(int(v) for v in re.findall(r"\d+", c)[:3])


def test_red_is_a_positive_log_det_and_raises_q():
    spec = FlowSpec(2, 1, make_activation())  # one affine layer: its log|det| is log|det W| everywhere
    W = np.diag([2.0, 1.5])
    params = {"W": jnp.asarray(W[None], jnp.float32), "b": jnp.zeros((1, 2), jnp.float32)}
    x = _points(50)
    f = lv.logdet_field(spec, params, None, 1, x, n=9)
    np.testing.assert_allclose(f.z, math.log(3.0), rtol=1e-6)  # > 0 everywhere
    fig = PL.logdet_field_figure(f)
    hm = fig.data[0]
    r_top, _, b_top = _rgb(hm.colorscale[-1][1])
    r_bot, _, b_bot = _rgb(hm.colorscale[0][1])
    assert hm.zmid == 0 and r_top > b_top and b_bot > r_bot  # positive values are drawn red, negative blue
    # the positive log-det is exactly what log q(x) gains over log N(z): the density is raised, not divided
    lq = np.asarray(log_prob(spec, params, jnp.asarray(x, jnp.float32)), np.float64)
    np.testing.assert_allclose(lq - log_normal(x @ W.T, np), math.log(3.0), rtol=1e-5)
    assert "raises" in PL.FIELD_LEGEND and "lowers" in PL.FIELD_LEGEND and "Red (log|det| > 0)" in PL.FIELD_LEGEND
    assert "divided" not in PL.FIELD_LEGEND
    assert hm.colorbar.title.text == PL.FIELD_COLORBAR and "raises q" in PL.FIELD_COLORBAR


def test_the_fields_add_up_to_log_q():
    """For a deep flow the per-layer fields at the data points plus the standardisation are log q − log N(z), so
    every red layer adds and every blue one subtracts (float32 rounding only)."""
    spec, params, norm = _model(L=4, dtype=jnp.float32)
    x = _points(40)
    total = sum(lv.local_logdet(spec, params, norm, x, k) for k in range(1, 5)) + float(norm.logdet())
    z = np.asarray(lv.push(spec, params, norm, x).values[-1], np.float64)
    lq = np.asarray(log_prob(spec, params, jnp.asarray(x, jnp.float32), norm), np.float64)
    np.testing.assert_allclose(total, lq - log_normal(z, np), atol=1e-4)
