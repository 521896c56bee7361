"""AppTest of the Layers page: a tiny Playground model in the session, a model trained here from the URL, bad URL
values, good and bad model files, a deep model (layer subsampling), and every view widget."""
import base64
import io
import json
import os
import re
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flowlab import files as fio
from flowlab import layerviz as lv
from flowlab import presets
from flowlab.flow import FlowSpec, Norm, init_params
from flowlab.layerviz import models
from apputil import can_link, text_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = os.path.join(ROOT, "pages", "layers.py")
TIMEOUT = 120


@pytest.fixture(autouse=True)
def fast_training(monkeypatch):
    """Models trained on the page: 40 steps and 2 layers by default, so a test takes seconds, not minutes."""
    monkeypatch.setattr(lv, "small_steps", lambda layers: 40)  # the page's caption
    monkeypatch.setattr(models, "small_steps", lambda layers: 40)  # train_small
    monkeypatch.setitem(presets.LAYERS, "layers", 2)


def tiny_model(L=3, density="trimodal", seed=0):
    spec = FlowSpec(2, L)
    params = init_params(spec, jax.random.PRNGKey(seed))
    params = {"W": params["W"] * jnp.asarray([1.3, 0.8]), "b": params["b"] + 0.1}
    x, lab = np.random.default_rng(seed).normal(size=(300, 2)), np.arange(300) % 3
    return {"spec": spec, "params": params, "norm": Norm.fit(x), "density": density, "data": x, "labels": lab,
            "method": "relative", "source": "playground"}


def app(query=None, session_model=None):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if session_model is not None:
        at.session_state["flowlab_model"] = session_model
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def no_errors(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [text_of(e.value) for e in at.error]


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def charts(at):
    """The page's plotly figures, in page order, as dicts."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def arr(v):
    """A plotly array from a figure's JSON: a list, or base64 'bdata' with its dtype."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def shown(md: str) -> str:
    """The text markdown ``md`` shows, with its code spans (``models.literal``) unwrapped."""
    return re.sub(r"(`+) ?(.*?) ?\1", r"\2", md)


def outside_code(md: str) -> str:
    """What of ``md`` is outside code spans: only there could a link, image or autolink form."""
    return re.sub(r"(`+) ?.*? ?\1", "", md)


def text(at):
    return shown(" ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption))


def errors(at):
    return [text_of(shown(e.value)) for e in at.error]


def test_session_model_renders_every_view():
    at = app(session_model=tiny_model())
    no_errors(at)
    assert at.radio(key="ly_source").value == "playground"
    assert metric(at, "Layers") == "3"
    assert "from the Playground" in text(at)
    figs = charts(at)
    assert len(figs) == 6  # x->z animation + panels, z->x animation + panels, depth chart, heatmap
    anim = figs[0]
    assert len(anim["frames"]) == 5  # x, h0, h1, h2, z
    assert [s["label"] for s in anim["layout"]["sliders"][0]["steps"]] == ["x", "h₀", "h₁", "h₂", "z"]
    assert {t.get("name") for t in anim["data"][2:]} == {"mode 1", "mode 2", "mode 3"}
    assert dict(at.query_params) == {}  # a session model has no URL settings
    assert any("Check on these" in c.value and "e-" in c.value for c in at.caption)
    assert not at.warning
    assert [b.proto.label for b in at.get("download_button")] == ["Animation (.gif)"]
    assert "raises the learned density q(x)" in text(at)  # red log|det| > 0 raises q (issue 17)


def test_view_widgets_change_the_figures():
    at = app(session_model=tiny_model())
    at.checkbox(key="ly_split").check().run()
    no_errors(at)
    anim = charts(at)[0]
    assert [s["label"] for s in anim["layout"]["sliders"][0]["steps"]] == ["x", "h₀", "y₁", "h₁", "y₂", "h₂", "z"]
    at.checkbox(key="ly_follow").uncheck().run()
    anim = charts(at)[0]
    assert len({tuple(f["layout"]["xaxis"]["range"]) for f in anim["frames"]}) == 1
    at.radio(key="ly_ggrid").set_value("cartesian").run()
    at.slider(key="ly_points").set_value(200).run()
    no_errors(at)
    at.slider(key="ly_k").set_value(3).run()
    assert any("affine last layer" in text_of(i.value) for i in at.info)
    at.radio(key="ly_plane").set_value("input").run()
    no_errors(at)
    assert "input plane" in charts(at)[5]["layout"]["title"]["text"]
    at.radio(key="ly_plane").set_value("x").run()
    at.slider(key="ly_k").set_value(2).run()
    at.radio(key="ly_cum").set_value("cumulative").run()
    no_errors(at)
    assert "∂x" in charts(at)[5]["layout"]["title"]["text"]


def test_trains_its_own_model_from_the_url_when_there_is_none():
    at = app({"density": "moons", "layers": "2"})
    no_errors(at)
    assert at.radio(key="ly_source").value == "train"
    assert list(at.radio(key="ly_source").options) == ["Model file (.npz)", "Train a small one here"]
    assert metric(at, "Layers") == "2" and "trained on this page" in text(at) and "Two moons" in text(at)
    assert dict(at.query_params) == {"density": "moons", "layers": "2"}
    assert {t.get("name") for t in charts(at)[0]["data"][2:]} == {"moon 1", "moon 2"}


def test_url_link_wins_over_the_session_model():
    at = app({"density": "banana", "layers": "2"}, session_model=tiny_model())
    no_errors(at)
    assert at.radio(key="ly_source").value == "train" and "Banana" in text(at)
    at.radio(key="ly_source").set_value("playground").run()  # the Playground's model is one click away
    no_errors(at)
    assert metric(at, "Layers") == "3" and dict(at.query_params) == {}


def test_bad_url_values_fall_back_with_visible_notes():
    at = app({"density": "unicorn", "layers": "abc"})
    assert not at.exception and not at.error
    notes = " ".join(text_of(w.value) for w in at.warning)
    assert "'unicorn'" in notes and "'abc'" in notes
    assert at.selectbox(key="ly_density").value == presets.LAYERS["density"]
    assert dict(at.query_params) == {"density": presets.LAYERS["density"], "layers": "2"}  # corrected URL goes out
    at = app({"layers": "1000"})
    assert any("between 1 and 100" in text_of(w.value) for w in at.warning)
    # above the maximum: clamped to it (not ignored), and the corrected link goes out
    assert at.slider(key="ly_layers").value == 100 and metric(at, "Layers") == "100"
    assert dict(at.query_params) == {"density": presets.LAYERS["density"], "layers": "100"}


def _to_file(at):
    at.radio(key="ly_source").set_value("file").run()
    return at


def test_model_file_good_then_bad_keeps_the_good_one():
    m = tiny_model(L=4, density="pinwheel", seed=1)
    raw = fio.model_bytes(m["spec"], m["params"], m["norm"], {"density": "pinwheel", "method": "exact"})
    at = _to_file(app(session_model=tiny_model()))
    assert any("Upload a FlowLab model file" in text_of(i.value) for i in at.info)
    assert metric(at, "Layers") == "3"  # meanwhile: the Playground's model
    at.file_uploader(key="ly_upload").upload("mine.npz", raw, "application/octet-stream").run()
    no_errors(at)
    assert metric(at, "Layers") == "4" and "mine.npz" in text(at) and "Pinwheel" in text(at)
    assert {t.get("name") for t in charts(at)[0]["data"][2:]} >= {"arm 1", "arm 5"}
    at.file_uploader(key="ly_upload").upload("broken.npz", b"not a model at all", "application/octet-stream").run()
    assert not at.exception
    assert len(at.error) == 1 and "broken.npz" in errors(at)[0] and "Not a FlowLab model file" in errors(at)[0]
    assert any("Still showing the previous file, mine.npz" in shown(i.value) for i in at.info)
    assert metric(at, "Layers") == "4" and len(at.get("plotly_chart")) == 6  # nothing lost


def test_bad_model_file_first_shows_a_sentence_and_a_fallback():
    at = _to_file(app())
    at.file_uploader(key="ly_upload").upload("x.npz", b"PK\x03\x04garbage", "application/octet-stream").run()
    assert not at.exception
    assert len(at.error) == 1 and errors(at)[0].startswith("x.npz: Not a FlowLab model file")
    assert len(at.get("plotly_chart")) == 6 and "Meanwhile showing a small" in text(at)
    spec3 = FlowSpec(3, 2)
    raw3 = fio.model_bytes(spec3, init_params(spec3, jax.random.PRNGKey(0)))
    at.file_uploader(key="ly_upload").upload("d3.npz", raw3, "application/octet-stream").run()
    assert any("3-dimensional" in e for e in errors(at))


def test_broken_session_model_says_so():
    m = tiny_model()
    m["params"] = {**m["params"], "W": m["params"]["W"].at[0, 0, 0].set(jnp.nan)}
    at = app(session_model=m)
    assert not at.exception
    assert any("NaN" in text_of(e.value) for e in at.error)
    assert len(at.get("plotly_chart")) == 6  # a model trained here is shown instead


def test_deep_model_is_subsampled():
    at = app(session_model=tiny_model(L=60))
    no_errors(at)
    assert any("60 layers: showing every 2nd layer" in text_of(i.value) for i in at.info)
    figs = charts(at)
    assert len(figs[0]["frames"]) <= lv.MAX_FRAMES + 1  # + h0
    depth_chart = figs[4]
    np.testing.assert_array_equal(arr(depth_chart["data"][0]["x"]), np.arange(1, 61))  # every layer kept


def _bomb(unpacked=100 << 20) -> bytes:
    """A model file whose W member unpacks to ``unpacked`` zero bytes (about 1000:1 packed)."""
    m = tiny_model()
    good = fio.model_bytes(m["spec"], m["params"], m["norm"])
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            if info.filename != "W.npy":
                zf.writestr(info.filename, src.read(info))
        with zf.open("W.npy", "w") as f:
            for _ in range(unpacked >> 20):
                f.write(bytes(1 << 20))
    return buf.getvalue()


def test_bomb_upload_gets_one_sentence_and_the_page_keeps_working():
    at = _to_file(app())
    at.file_uploader(key="ly_upload").upload("bomb.npz", _bomb(), "application/octet-stream").run()
    assert not at.exception and len(at.error) == 1
    msg = errors(at)[0]
    assert msg.startswith("bomb.npz: The model file's W would unpack to 104,857,600 bytes")
    assert msg.endswith(".") and "\n" not in msg and len(msg) < 300
    assert len(at.get("plotly_chart")) == 6 and "Meanwhile showing a small" in text(at)
    m = tiny_model(L=4)
    at.file_uploader(key="ly_upload").upload("ok.npz", fio.model_bytes(m["spec"], m["params"], m["norm"]),
                                             "application/octet-stream").run()
    no_errors(at)
    assert metric(at, "Layers") == "4" and "ok.npz" in text(at)


LINK = "[click](http://evil.example) ![beacon](http://evil.example/b.png) www.evil.example"


def test_markdown_from_a_model_file_is_shown_literally():
    """Names and values from a file are code spans (Streamlit renders no link, autolink or image inside one; backslash
    escapes would not stop its autolinking of bare URLs), so nothing of the file's text is outside them."""
    m = tiny_model()
    raw = fio.model_bytes(m["spec"], m["params"], m["norm"], {"method": LINK})
    at = _to_file(app())
    at.file_uploader(key="ly_upload").upload(f"{LINK}.npz", raw, "application/octet-stream").run()
    no_errors(at)
    line = next(md.value for md in at.markdown if "layer** flow" in md.value)
    assert "evil" not in outside_code(line) and "http" not in outside_code(line)
    assert "from the file [click](http://evil.example) ![beacon]" in shown(line)  # the name as text, cut
    assert shown(line).endswith(f"{LINK[:models.MAX_NAME_CHARS - 1]}… gradient")  # the method, cut
    bad = fio.model_bytes(m["spec"], m["params"], m["norm"], {"format": LINK})
    at.file_uploader(key="ly_upload").upload(f"{LINK}.npz", bad, "application/octet-stream").run()
    assert not at.exception and len(at.error) == 1 and not can_link(at.error[0].value)
    assert "format is '[click](http://evil.example)" in errors(at)[0]
    assert all("evil" not in outside_code(i.value) for i in at.info)  # "Still showing the previous file, ..."
    assert metric(at, "Layers") == "3"  # the good file is kept
