"""flowlab.layerviz.views: layer subsampling for deep flows, stage selection, plot ranges, point subsets, names."""
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import layerviz as lv
from layerviz_cases import model as _model, points as _points


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
    assert "every 2nd layer" in lv.view_depths(60, lv.MAX_FRAMES)[1]
    with pytest.raises(ValueError):
        lv.pick_depths(5, 1)


def test_pick_stages():
    assert lv.pick_stages(5, 8) == [0, 1, 2, 3, 4]
    s = lv.pick_stages(100, 6)
    assert s[0] == 0 and s[-1] == 99 and len(s) <= 6
    with pytest.raises(ValueError):
        lv.pick_stages(10, 1)


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
    assert lv.span(((1.0, 4.0), (0.0, 3.0))) == 3.0
    a, b = lv.subsample(1000, 100, seed=4), lv.subsample(1000, 100, seed=4)
    assert len(a) == 100 and np.all(np.diff(a) > 0) and np.array_equal(a, b)
    assert np.array_equal(lv.subsample(50, 100), np.arange(50))


def test_count_nonfinite():
    assert lv.count_nonfinite(np.array([[0.0, 1.0], [np.nan, 1.0], [np.inf, -np.inf]])) == 2
    assert lv.count_nonfinite(np.zeros((4, 2), np.float32)) == 0


def test_label_names():
    assert lv.label_names("moons", np.array([0, 1, 1])) == ["moon 1", "moon 2"]
    assert lv.label_names(None, np.array([0, 2])) == ["group 1", "group 2", "group 3"]
    assert lv.label_names("pinwheel", np.array([0]), noun="arm") == ["arm 1"]
    assert lv.label_names(None, np.array([3]), lv.ANGLE_NOUN) == lv.sector_names()
    assert lv.label_names("moons", jnp.zeros(0, jnp.int32)) == []
