"""flowlab.plots.gif: animated GIFs for slides (headers, frame counts, the 5 MB cap) from real flow paths."""
import io

import jax
import numpy as np
from PIL import Image

from flowlab import layerviz as lv
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec, init_params
from flowlab.plots import gif


def _frames(raw: bytes) -> int:
    im = Image.open(io.BytesIO(raw))
    assert raw[:6] == b"GIF89a" and im.format == "GIF"
    return im.n_frames


def test_layers_x_to_z_gif_has_one_frame_per_stage_and_follows_the_points():
    spec = FlowSpec(2, 3, make_activation())
    params = init_params(spec, jax.random.PRNGKey(0))
    x = np.random.default_rng(0).normal(size=(300, 2)) * np.array([3.0, 0.2])
    path = lv.push(spec, params, None, x)
    ranges = lv.stage_ranges(path, follow=True)
    raw = gif.points_gif(path.values, path.names, ranges, labels=np.arange(300) % 3)
    assert _frames(raw) == len(path.names) and len(raw) <= gif.MAX_BYTES
    fixed = lv.stage_ranges(path, follow=False)
    assert all(r == fixed[0] for r in fixed) and lv.span(ranges[0]) == lv.span(fixed[0])
    # the first frame shows the points: some pixels carry the first label colour
    first = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
    assert (np.abs(first.astype(int) - np.array(gif._hex(gif.LABEL_COLORS[0]))).sum(axis=2) < 30).sum() > 50


def test_density_gif_fits_the_cap_by_dropping_frames():
    lp = np.log(np.random.default_rng(1).random((120, 120)) + 1e-3)
    raw = gif.density_gif([(i * 100, lp * (1 + 0.01 * i)) for i in range(40)], zmax=1.0, title="test", scale=8)
    assert len(raw) <= gif.MAX_BYTES and 2 <= _frames(raw) <= 40
