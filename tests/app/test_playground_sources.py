"""AppTest of the Playground's own-density sources: typed text (from the URL too), an uploaded picture, a drawing —
each trains with a KL, and each bad input is one sentence with nothing lost."""
import io

import numpy as np
import pytest
from apputil import metric, no_errors, open_page, rerun_until, text_of, widget
from PIL import Image

SMALL = {"layers": "3", "batch": "32", "ntrain": "2000", "warmup": "0"}


def step(at) -> int:
    return int(metric(at, "Step").replace(",", ""))


def _png(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8), "L").save(buf, format="PNG")
    return buf.getvalue()


def test_text_from_the_url_trains_with_a_kl_and_the_link_carries_it():
    at = open_page("playground", {"data": "text", "text": "Hi", **SMALL})
    no_errors(at)
    assert widget(at, "pg_source").value == "text" and widget(at, "pg_text").value == "Hi"
    assert dict(at.query_params)["data"] == "text" and dict(at.query_params)["text"] == "Hi"
    assert any("cannot reproduce sharp edges" in c.value for c in at.caption)  # the honest limit is said
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: step(a) > 0)
    assert np.isfinite(float(metric(at, "KL(p‖q)")))
    widget(at, "pg_text").set_value("x" * 13).run()  # over the limit: refused by the widget's own max_chars
    assert not at.exception


def test_text_too_long_in_the_link_is_a_note():
    at = open_page("playground", {"data": "text", "text": "far too long for the plane"})
    assert not at.exception
    assert any("at most 12 characters" in text_of(w.value) for w in at.warning)


def test_picture_good_trains_and_bad_ones_are_one_sentence():
    at = open_page("playground", {"data": "picture", **SMALL})
    no_errors(at)
    assert any("Upload a picture" in text_of(i.value) for i in at.info)
    img = np.full((40, 40), 255, np.uint8)
    img[10:30, 15:25] = 0
    at.file_uploader(key="pg_picture").upload("block.png", _png(img), "image/png")
    at.run()
    no_errors(at)
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: step(a) > 0)
    assert np.isfinite(float(metric(at, "KL(p‖q)")))
    for name, raw, match in (("white.png", _png(np.full((30, 30), 255)), "empty"),
                             ("fake.png", b"this is no picture", "not a picture")):
        at.file_uploader(key="pg_picture").upload(name, raw, "image/png")
        at.run()
        assert not at.exception
        assert len(at.error) == 1 and name in text_of(at.error[0].value) and match in text_of(at.error[0].value)
        assert at.button(key="pg_train").disabled


def test_drawing_needs_ten_points():
    at = open_page("playground", {"data": "draw", **SMALL})
    no_errors(at)
    assert at.button(key="pg_train").disabled  # nothing drawn yet
    at.session_state["pg_draw_points"] = [[0.1 * k, 0.0] for k in range(5)]
    at.run()
    assert at.button(key="pg_train").disabled
    at.session_state["pg_draw_points"] = [[np.cos(t), np.sin(t)] for t in np.linspace(0, 6, 30)]
    at.run()
    no_errors(at)
    assert not at.button(key="pg_train").disabled
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: step(a) > 0)
    assert np.isfinite(float(metric(at, "KL(p‖q)")))
    at.button(key="pg_draw_clear").click().run()
    assert at.button(key="pg_train").disabled and at.session_state["pg_draw_points"] == []


@pytest.mark.parametrize("source", ["text", "draw"])
def test_switching_the_source_ends_the_run_with_a_sentence(source):
    at = open_page("playground", {"density": "moons", **SMALL})
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: step(a) > 0)
    widget(at, "pg_source").set_value(source).run()
    assert any("the data source" in w.value or "discarded" in text_of(w.value) for w in at.warning)


def test_changing_the_bandwidth_of_a_drawing_restarts_with_a_sentence_and_updates_the_link():
    at = open_page("playground", {"data": "draw", **SMALL})
    at.session_state["pg_draw_points"] = [[np.cos(t), np.sin(t)] for t in np.linspace(0, 6, 30)]
    at.run()
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: step(a) > 0)
    widget(at, "pg_bandwidth").set_value(0.3).run()
    assert any("bandwidth" in text_of(w.value) for w in at.warning)
    assert at.query_params["bw"] in ("0.3", ["0.3"]) and "text" not in at.query_params
