"""flowlab.layerviz.models: model sources (Playground session, model file, trained here), the page's URL settings
(settings.LAYERS_PAGE with presets.LAYERS), the description line, the generative view's base points and grid."""
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import files as fio
from flowlab import layerviz as lv
from flowlab import presets
from flowlab.flow import FlowSpec, init_params
from flowlab.schema import literal
from flowlab.settings import LAYERS_PAGE
from layerviz_cases import model as _model


# ---- URL settings ---------------------------------------------------------------------------------------------------
def test_layers_page_url_settings():
    d = presets.LAYERS
    parse = LAYERS_PAGE.parse_query
    assert LAYERS_PAGE.query_keys == ("density", "layers")
    s, notes = parse({})
    assert (s["density"], s["layers"]) == (d["density"], d["layers"]) and notes == []
    s, notes = parse({"density": "banana", "layers": ["3", "4"]})
    assert (s["density"], s["layers"]) == ("banana", 4) and notes == []
    s, notes = parse({"density": "unicorn", "layers": "2.5"})
    assert (s["density"], s["layers"]) == (d["density"], d["layers"])
    assert len(notes) == 2 and "'unicorn'" in notes[0] and "'2.5'" in notes[1]
    s, notes = parse({"layers": "500"})
    assert "between 1 and 100" in notes[0] and s["layers"] == 100  # above the maximum: clamped, with a note
    _, notes = parse({"layers": "1e999"})
    assert "not a whole number" in notes[0]
    assert LAYERS_PAGE.dump_query({"density": "moons", "layers": 2}) == {"density": "moons", "layers": "2"}


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


def test_model_from_file_with_a_link_as_method_and_an_overflowing_inverse():
    spec, params, norm = _model(L=4, dtype=jnp.float32)
    m = lv.model_from_file(fio.model_bytes(spec, params, norm, {"method": LINK, "density": "no such"}), n_points=50)
    assert m.method == LINK and m.density is None  # kept as data; describe shows it literally
    tiny = {"W": jnp.stack([jnp.eye(2) * 1e-12] * 4), "b": jnp.zeros((4, 2))}  # invertible, but W^-4 = 1e48 overflows
    with pytest.raises(ValueError, match="points sampled from the model file's flow are finite") as e:
        lv.model_from_file(fio.model_bytes(spec, tiny, norm), n_points=50)
    assert "\n" not in str(e.value) and str(e.value).endswith(".")


def test_train_small_is_quick_and_labelled():
    m = lv.train_small("moons", 2, steps=40, n_points=120)
    assert m.source == "trained" and m.spec.layers == 2 and m.data.shape == (120, 2)
    assert set(np.unique(m.labels)) == {0, 1} and "40 steps" in m.note
    assert m.method == "relative" and m.label_noun == "moon"
    assert lv.small_steps(8) == lv.SMALL_STEPS and 600 <= lv.small_steps(100) < lv.SMALL_STEPS


def test_no_streamlit_in_flowlab():
    code = ("import sys, flowlab.layerviz, flowlab.plots.layers; "
            "assert 'streamlit' not in sys.modules, 'flowlab must not import streamlit'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=lv.__file__.rsplit("/flowlab/", 1)[0])


# ---- the page's words and the generative view -----------------------------------------------------------------------
def _layer_model(**over):
    spec, params, norm = _model(L=3, dtype=jnp.float32)
    fields = dict(spec=spec, params=params, norm=norm, data=np.zeros((4, 2)), labels=np.arange(4) % 2,
                  density="moons", source="playground", method="relative", label_noun="moon", note="")
    fields.update(over)
    return lv.LayerModel(**fields)


def test_describe_says_what_and_where():
    line = lv.describe(_layer_model())
    assert line.startswith("**3-layer** flow on **Two moons (paper)**, from the Playground · ")
    assert "relative gradient" in line and line.count(" · ") == 2
    f = lv.describe(_layer_model(source="file", density=None, method="my_method", note="trained 400 steps"),
                    "mine.npz")
    assert "on uploaded data, from the file `mine.npz`" in f and "`my_method` gradient" in f
    assert f.endswith(" · trained 400 steps")
    assert "trained on this page" in lv.describe(_layer_model(source="trained", method=None))


LINK = "[click](http://evil.example) ![beacon](http://evil.example/x.png) <img src=x> $x$ *em* www.evil.example"


def outside_code(md: str) -> str:
    """What of markdown ``md`` is outside code spans (code spans show their text as-is: no link forms there)."""
    return re.sub(r"(`+) ?.*? ?\1", "", md)


def test_literal_is_a_code_span_of_the_text():
    out = literal(LINK + "\n# heading\n`code` ``two``")
    assert out == f"``` {LINK} # heading `code` ``two`` ```" and outside_code(out) == ""
    assert literal("x" * 500, 60) == f"`{'x' * 59}…`" and literal("  \n") == ""


def test_describe_shows_names_from_a_file_literally():
    f = lv.describe(_layer_model(source="file", density=None, method=LINK, note=""), "[a](http://b.c)" * 50 + ".npz")
    rest = outside_code(f)
    assert "http" not in rest and "evil" not in rest and "[" not in rest and "<" not in rest
    assert "`[a](http://b.c)[a](http://b.c)" in f and len(f) < 400  # names cut to MAX_NAME_CHARS


def test_colouring_phrase():
    assert "angle of the base point" in lv.colouring(_layer_model(label_noun=lv.ANGLE_NOUN), True)
    assert lv.colouring(_layer_model(), True) == "coloured by the moon they came from"
    assert lv.colouring(_layer_model(label_noun=None), True) == "coloured by the group they came from"
    assert lv.colouring(_layer_model(labels=None), False) == "uploaded data has no groups"


def test_base_points_and_grids():
    z, lab = lv.base_points(300)
    assert z.shape == (300, 2) and np.array_equal(lab, lv.angle_sectors(z))
    np.testing.assert_array_equal(lv.base_points(300)[0], z)  # the same points on every redraw
    polar, n_first = lv.base_grid("polar")
    assert n_first == 6 and polar.shape[0] == 6 + 16
    np.testing.assert_allclose(np.linalg.norm(polar[n_first - 1], axis=-1), 3.0)  # the last circle: radius 3
    cart, n_first = lv.base_grid("cartesian")
    assert n_first == lv.GRID_LINES and cart.shape == (2 * lv.GRID_LINES, 80, 2)
    assert cart.min() == -3.0 and cart.max() == 3.0
    assert lv.BASE_GRIDS == ("polar", "cartesian")
    with pytest.raises(ValueError, match="Unknown grid"):
        lv.base_grid("hex")


def test_view_range_is_square_around_the_data():
    m = _layer_model(data=np.random.default_rng(0).normal(size=(200, 2)) * [3, 1])
    (x0, x1), (y0, y1) = lv.view_range(m)
    assert np.isclose(x1 - x0, y1 - y0) and x0 < -3 < 3 < x1
