"""AppTest for the Learn page: every lesson renders, widgets drive the numbers, the live training reaches the bound."""
import os
import re
from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest

from flowlab import lessons as L
from flowlab.settings import SCHEMAS

PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "pages", "learn.py")


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_every_lesson_renders(app):
    assert len(app.tabs) == 7
    heads = [h.value for h in app.subheader]
    for n in range(1, 7):
        assert any(h.startswith(f"{n} ·") for h in heads), heads
    assert any(h == "References" for h in heads)
    keys = {c.key for c in app.get("plotly_chart")}
    assert {"learn_fig_cov", "learn_fig_lin", "learn_fig_time", "learn_fig_dep", "learn_fig_flops", "learn_fig_snf",
            "learn_fig_scale", "learn_fig_snf_learn"} <= keys, keys
    assert len(app.latex) >= 6
    assert not app.error


def test_try_it_links_present(app):
    links = " ".join(m.value for m in app.markdown if "Try it" in m.value)
    for target in ("(playground?density=", "(layers?density=", "(timing?dims=", "(compare?density=moons&layers=2"):
        assert target in links, target
    assert "method=self_normalizing" in links


def test_references_cite_four_papers(app):
    text = " ".join(m.value for m in app.markdown)
    for name in ("Gresele", "Keller", "Liao", "Zhao"):
        assert name in text


def test_change_of_variables_widgets(app):
    assert float(_metric(app, "∫ p_Z(z) dz (formula)")) == pytest.approx(1.0, abs=2e-3)
    app.selectbox(key="learn_map").set_value("tanh_linear").run()
    assert not app.exception
    assert float(_metric(app, "∫ p_Z(z) dz (formula)")) == pytest.approx(1.0, abs=2e-3)
    assert "activation=tanh_linear" in " ".join(m.value for m in app.markdown if "Try it" in m.value)


def test_linear_map_det_and_singular_message(app):
    assert _metric(app, "det A") == _metric(app, "area(ellipse) / area(circle)")
    app.slider(key="learn_A11").set_value(1.0)
    app.slider(key="learn_A12").set_value(2.0)
    app.slider(key="learn_A21").set_value(0.5)
    app.slider(key="learn_A22").set_value(1.0).run()
    assert not app.exception
    assert any("singular" in e.value for e in app.error)
    app.slider(key="learn_A22").set_value(1.5).run()
    assert not app.error


def test_relative_gradient_checks_are_small(app):
    assert float(_metric(app, "eq. 10: ‖G − W⁻ᵀ‖ / ‖W⁻ᵀ‖")) < 1e-6
    assert float(_metric(app, "eq. 14: ‖G WᵀW − W‖ / ‖W‖")) < 1e-6


def test_live_linear_training_reaches_bound():
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    at.select_slider(key="learn_lin_steps").set_value(200)
    at.select_slider(key="learn_lin_lr").set_value(0.05)
    at.run()
    at.button(key="learn_lin_train").click().run()
    assert not at.exception, at.exception
    m = next(m for m in at.metric if m.label == "trained NLL (training set)")
    gap = float(re.search(r"[-+][\d.]+", m.delta).group())
    assert -1e-3 < gap < 0.01
    assert float(next(m.value for m in at.metric if m.label == "‖W Σ Wᵀ − I‖ (whitening)")) < 0.1
    assert any("closed-form optimum" in str(c.proto.spec) for c in at.get("plotly_chart"))


def test_timing_remeasure_and_dimension(app):
    app.select_slider(key="learn_tmax").set_value(128).run()
    assert not app.exception
    assert list(app.session_state["learn_time"]["dims"]) == [16, 32, 64, 128]
    app.button(key="learn_time_btn").click().run()
    assert not app.exception
    assert any("At D = 128" in c.value for c in app.caption)


def test_try_it_links_are_understood_by_their_pages(app):
    """Every parameter of every "try it" link is a query key of the target page's settings schema, and the link
    parses there with no notes (nothing falls back or is clamped)."""
    links = re.findall(r"\]\((\w+)\?([^)]*)\)", " ".join(m.value for m in app.markdown if "Try it" in m.value))
    assert {page for page, _ in links} == {"playground", "layers", "timing", "compare"}
    for page, query in links:
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        schema = SCHEMAS[page]
        assert set(q) <= set(schema.query_keys), (page, set(q) - set(schema.query_keys))
        _, notes = schema.parse_query(q)
        assert notes == [], (page, notes)


def test_lu_check_caption_comes_from_the_lessons(app):
    lu = L.lu_check(L.random_matrix(5, seed=1))
    assert any(f"vs slogdet {lu['logdet']:.6f}" in c.value and f"{lu['logdet_lu']:.6f}" in c.value
               for c in app.caption)
