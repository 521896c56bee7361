"""flowlab.plots.layers: the animation and the small multiples follow the layers, the volume figures show the split,
and every colour comes from the palette (flowlab.plots.style)."""
import inspect
import re

import jax.numpy as jnp
import numpy as np

from flowlab import layerviz as lv
from flowlab.plots import layers as PL
from flowlab.plots import style
from layerviz_cases import model as _model, points as _points


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
    # colours: the two grid families and the groups come from the palette
    assert (fig.data[0].line.color, fig.data[1].line.color) == style.GRID_LINE_COLORS
    assert [t.marker.color for t in fig.data[2:]] == list(style.LABEL_COLORS[:3])


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


def test_field_titles():
    assert PL.field_title(3, "x") == "log|det ∂h<sub>3</sub>/∂h<sub>2</sub>| over the data plane x"
    assert PL.field_title(3, "x", cumulative=True).startswith("log|det ∂h<sub>3</sub>/∂x|")
    assert "input plane" in PL.field_title(2, "input")


def test_no_colour_literals_and_no_playground_import():
    src = inspect.getsource(PL)
    assert not re.search(r"#[0-9a-fA-F]{3,6}\b", src)
    assert not re.search(r"rgba\(\s*\d", src)  # translucent colours only through style.rgba()
    assert "playground" not in src
