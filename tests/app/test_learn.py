"""AppTest for the Learn page: every lesson renders, widgets drive the numbers, the live training reaches the bound."""
import os
import re
from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest

from flowlab import lessons as L
from flowlab import presets
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
    assert len(app.tabs) == 8
    heads = [h.value for h in app.subheader]
    for n in range(1, 8):
        assert any(h.startswith(f"{n} ·") for h in heads), heads
    assert any(h == "References" for h in heads)
    keys = {c.key for c in app.get("plotly_chart")}
    assert {"learn_fig_cov", "learn_fig_lin", "learn_fig_time", "learn_fig_dep", "learn_fig_flops", "learn_fig_snf",
            "learn_fig_scale", "learn_fig_snf_lambda", "learn_fig_act"} <= keys, keys
    assert len(app.latex) >= 6
    assert not app.error


def test_try_it_links_present(app):
    links = " ".join(m.value for m in app.markdown if "Try it" in m.value)
    for target in ("(playground?density=", "(layers?density=", "(timing?dims=", "(compare?density=moons&layers=2"):
        assert target in links, target
    assert "method=self_normalizing" in links
    # lesson 5's link opens the tuned self-normalizing preset (no setting overridden); its quality is measured with
    # the CLI (python -m flowlab train --density trimodal --method self_normalizing --steps 30000 --fixed-schedule)
    assert "(playground?density=trimodal&method=self_normalizing&seed=0)" in links


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
    assert _metric(app, "det A") == _metric(app, "signed area ratio (ellipse / circle)")
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


def test_signed_area_ratio_shows_a_negative_determinant(app):
    app.slider(key="learn_A11").set_value(0.3)
    app.slider(key="learn_A12").set_value(1.0)
    app.slider(key="learn_A21").set_value(1.2)
    app.slider(key="learn_A22").set_value(0.5).run()
    assert not app.exception
    assert float(_metric(app, "signed area ratio (ellipse / circle)")) == pytest.approx(-1.05, abs=1e-4)
    assert float(_metric(app, "det A")) == pytest.approx(-1.05, abs=1e-4)


def test_lesson4_states_the_reuse_of_hwt_and_its_crossovers(app):
    batch = 64  # the lesson's default batch
    cap = next(c.value for c in app.caption if c.value.startswith("Eq. 15 live"))
    assert "forward pass" in cap
    assert f"from D = {L.relative_update_crossover(batch)} on" in cap
    assert f"to D = {L.relative_update_crossover(batch, reuse=False)}" in cap


def test_lesson5_numbers_come_from_the_demonstrations(app):
    """The angle sentence and the λ sentences are the lesson module's, computed from the page's own runs."""
    captions = [c.value for c in app.caption]
    r = L.snf_angle_path(8, L.SNF_BATCH, 0.1, seed=0)
    assert L.snf_path_summary(r) in captions
    for line in L.snf_lambda_summary(L.snf_lambda_runs(8, L.SNF_BATCH, 0.1, seed=0)):
        assert line in captions
    text = " ".join(m.value for m in app.markdown)
    assert "Keller's λ" in text and "maximised" in text  # the sign and scale conventions are stated
    assert not any("within ~2°" in c or "small inverse errors cost little" in c for c in captions)


def test_lesson5_error_widget_moves_the_angle():
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    at.select_slider(key="learn_snf_eps").set_value(0.01).run()
    assert not at.exception, at.exception
    r = L.snf_angle_path(8, L.SNF_BATCH, 0.01, seed=0)
    assert L.snf_path_summary(r) in [c.value for c in at.caption]


def test_lesson6_cites_the_ppca_case_and_computes_the_balance(app):
    text = " ".join(m.value for m in app.markdown)
    assert "App. A.2" in text and "their eq. 6, the PPCA" not in text
    assert "which every optimum satisfies (before training)" not in text
    cap = next(c.value for c in app.caption if c.value.startswith("The weights shown (before training)"))
    assert re.search(r"E‖z‖² = \d+\.\d{3} with d = 2, so the best rescaling is s\* = √\(d / E‖z‖²\) = \d+\.\d{3}", cap)


def test_lesson7_counts_come_from_flowlab_and_nothing_trains_before_the_button(app):
    act = L.lesson_activation()
    c0 = L.parameter_counts(act)[0]
    assert _metric(app, f"weights W per layer at D = {c0['D']}") == f"{c0['W']:,}"
    assert _metric(app, f"activation parameters θ per layer at D = {c0['D']}") == f"{c0['theta']:,}"
    assert _metric(app, "cost of a training step vs a fixed activation") == f"{L.step_cost_ratio(act):g}×"
    assert any("Press **Train** to train a flow with the tuned preset" in i.value for i in app.info)
    assert "learn_act_on" not in app.session_state
    links = " ".join(m.value for m in app.markdown if "Try it" in m.value)
    density = app.selectbox(key="learn_act_density").value
    base = presets.DEFAULT
    for act_name, layers in ((act.name, L.lesson_settings(density)["layers"]), (base.activation, base.layers)):
        assert f"({L.try_it_url('playground', density=density, activation=act_name, layers=layers, seed=0)})" in links


def test_lesson7_trains_on_the_button_and_shows_its_checks():
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.run()
    at.selectbox(key="learn_act_density").set_value("moons").run()
    waiting = "Press **Train** to train a flow with the tuned preset"
    assert any(waiting in i.value for i in at.info)  # picking a density alone does not train
    at.button(key="learn_act_train").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert float(_metric(at, "θ-gradient error")) <= L.GRADIENT_TOL
    assert float(_metric(at, "min s′(x) / e^ρ")) >= 1.0
    assert -0.1 < float(_metric(at, "KL(p‖q), nats")) < 5.0  # an estimate: NLL − H(p) on held-out points
    captions = [c.value for c in at.caption]
    assert any("up to rounding" in c for c in captions)
    assert any("holds, so every learned s is strictly increasing" in c for c in captions)
    assert not any(waiting in i.value for i in at.info)
