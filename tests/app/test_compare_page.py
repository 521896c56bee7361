"""AppTest of the Compare page (named test_compare_page.py: tests/ and tests/app/ are not packages, so two modules
called test_compare could not be collected in one run): defaults, a tiny run to the end (the learning-rate figure,
the curves at each method's best rate or at the shared one, the table with each method's rate, the conclusion computed
from the run, downloads), cancel, divergence shown, bad input (URL values, a value above a widget's maximum, λ list,
rates, no methods)."""
import os
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flowlab import compare as C
from flowlab import presets
from flowlab.settings import COMPARE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = os.path.join(ROOT, "pages", "compare.py")
TIMEOUT = 120
# tiny: 2 inits × 3 rates (0.01, 0.04 and the shared 0.02), 40 points, 2 layers; the same shapes in every test, so
# compiled functions are reused
TINY = {"inits": "2", "points": "40", "iters": "6", "layers": "2", "rates": "0.01,0.04"}


def app(query=None):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def seen(text: str) -> str:
    """A message as the reader sees it: the page escapes markdown in echoed values (backslashes, invisible word
    joiners), which the AppTest returns as source."""
    return re.sub(r"\\(.)", r"\1", text).replace("\u2060", "")


def no_errors(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def run_to_end(at, key="cmp_run_btn", max_ticks=40):
    at.button(key=key).click().run()
    for _ in range(max_ticks):
        if at.session_state["cmp_active"] is None:
            break
        at.run()
    return at


def test_defaults_and_url_out():
    at = app()
    no_errors(at)
    d = C.CompareSettings()
    assert at.selectbox(key="cmp_density").value == d.density
    assert at.number_input(key="cmp_dim").value == 2 and at.number_input(key="cmp_dim").disabled
    assert at.number_input(key="cmp_layers").value == d.layers == 2
    assert at.radio(key="cmp_optimizer").value == "sgd"
    assert at.number_input(key="cmp_lr").value == d.lr == presets.COMPARE_LR["sgd"]
    assert at.slider(key="cmp_inits").value == 10
    assert at.number_input(key="cmp_points").value == 1000
    assert list(at.multiselect(key="cmp_methods").value) == list(presets.COMPARE["methods"])
    assert C.CompareSettings(rates=at.text_input(key="cmp_rates").value).rates == presets.COMPARE_RATES["sgd"]
    assert at.radio(key="cmp_curves").value == "best"
    assert not at.button(key="cmp_run_btn").disabled and at.button(key="cmp_stop_btn").disabled
    assert not at.warning
    assert dict(at.query_params) == COMPARE.dump_query(d.as_dict())
    assert any("Press **Run**" in i.value for i in at.info)


def test_tiny_run_to_the_end_shows_figure_table_downloads():
    at = run_to_end(app(TINY))
    no_errors(at)
    job = at.session_state["cmp_job"]
    assert job.done and job.iteration == 6
    curves = job.curves()
    assert set(curves["methods"]) == set(presets.COMPARE["methods"]) and curves["rates"] == [0.01, 0.02, 0.04]
    for d in curves["methods"].values():  # every member: 3 rates × 2 inits, 7 evaluations
        assert d["loss"].shape == (7, 6) and np.all(np.isfinite(d["loss"]))
    # all methods and rates start from the same loss: the same initial weights
    starts = np.concatenate([d["loss"][0] for d in curves["methods"].values()])
    np.testing.assert_allclose(starts, np.tile(starts[:2], 9), rtol=1e-6)
    # the page shows: the rate figure, then the curves at each method's best rate, the table with each rate, and the
    # conclusion computed from this run
    assert len(at.get("plotly_chart")) == 2
    best = C.best_rates(curves)
    said = C.conclusion(curves, "best")
    assert [i.value for i in at.info] == [said["loss"]]
    assert said["loss"].startswith("After 6 iterations, each method at its best learning rate of those tried")
    table = at.dataframe[0].value
    assert len(at.dataframe) == 1 and len(table) == 3
    assert list(table["lr"]) == [f"{best[m]:.3g}" for m in C.CompareSettings().methods]
    assert any(c.value.startswith(said["time"]) for c in at.caption)
    assert "Finished 6 iterations." in at.get("progress")[0].proto.text
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Curves, every rate (.csv)", "Figures (.html)", "Summary (.json)"]
    assert at.button(key="cmp_stop_btn").disabled and not at.button(key="cmp_run_btn").disabled
    # the shared-rate view: the same run, every method at 0.02, its own conclusion; nothing runs again
    at.radio(key="cmp_curves").set_value("shared").run()
    no_errors(at)
    assert at.session_state["cmp_job"] is job and at.session_state["cmp_active"] is None
    assert list(at.dataframe[0].value["lr"]) == ["0.02"] * 3
    assert [i.value for i in at.info] == [C.conclusion(curves, "shared")["loss"]]
    assert at.query_params["curves"] == "shared"


def test_cancel_stops_between_pieces():
    at = app({**TINY, "iters": "20000", "opt": "adam", "lr": "0.001"})
    no_errors(at)
    at.button(key="cmp_run_btn").click().run()
    job = at.session_state["cmp_job"]
    assert at.session_state["cmp_active"] == "run" and not at.button(key="cmp_stop_btn").disabled
    assert 0 < job.iteration < 20000
    at.button(key="cmp_stop_btn").click().run()
    no_errors(at)
    it = job.iteration
    assert job.cancelled and at.session_state["cmp_active"] is None
    at.run()
    assert job.iteration == it  # nothing runs after Stop
    assert f"Stopped at iteration {it:,}" in at.get("progress")[0].proto.text
    assert len(at.get("download_button")) == 3  # partial results are downloadable


def test_divergence_is_shown_not_raised():
    at = run_to_end(app({**TINY, "lr": "8", "curves": "shared"}))
    assert not at.exception
    job = at.session_state["cmp_job"]
    assert job.done
    assert any("at lr 8:" in w.value and "diverged" in w.value for w in at.warning)
    curves = job.curves()
    assert any(np.any(d["diverged_at"] >= 0) for d in curves["methods"].values())
    # at each method's best rate the diverging shared rate is not chosen
    at.radio(key="cmp_curves").set_value("best").run()
    assert not at.exception
    assert all(r != 8.0 for r in C.best_rates(curves).values())
    assert not any("at lr 8:" in w.value for w in at.warning)


def test_bad_url_values_fall_back_with_notes():
    at = app({"layers": "abc", "lr": "-1", "density": "unicorn", "dim": "3"})
    assert not at.exception
    notes = " ".join(seen(w.value) for w in at.warning)
    for bad in ("'abc'", "'-1'", "'unicorn'", "D = 3"):
        assert bad in notes, bad
    assert at.number_input(key="cmp_layers").value == 2 and at.number_input(key="cmp_lr").value == 0.02
    assert at.selectbox(key="cmp_density").value == "trimodal"


def test_url_value_above_the_maximum_is_clamped_with_a_note():
    """Issue 14: ?inits=21 raised StreamlitValueAboveMaxError; now the slider holds the schema's maximum, a note says
    so, and the address bar is rewritten to the value used."""
    at = app({"inits": "21"})
    no_errors(at)
    notes = [seen(w.value) for w in at.warning]
    assert len(notes) == 1 and "inits='21'" in notes[0] and "20" in notes[0]
    assert at.slider(key="cmp_inits").value == 20 == COMPARE["inits"].hi
    assert at.query_params["inits"] == "20"


def test_optimizer_switch_sets_its_learning_rate_and_gd_link_means_sgd():
    at = app({"opt": "gd"})
    no_errors(at)
    assert at.radio(key="cmp_optimizer").value == "sgd" and not at.warning
    at.radio(key="cmp_optimizer").set_value("adam").run()
    assert at.number_input(key="cmp_lr").value == presets.COMPARE_LR["adam"]
    assert C.CompareSettings(rates=at.text_input(key="cmp_rates").value).rates == presets.COMPARE_RATES["adam"]
    assert at.query_params["opt"] == "adam" and at.query_params["lr"] == "0.005"


def test_bad_widget_input_is_a_sentence_and_blocks_run():
    at = app(TINY)
    at.multiselect(key="cmp_methods").set_value([]).run()
    assert not at.exception
    assert any("gradient methods must name at least one" in e.value for e in at.error)
    assert at.button(key="cmp_run_btn").disabled
    at.multiselect(key="cmp_methods").set_value(["relative"]).run()
    no_errors(at)
    at.text_input(key="cmp_lams").set_value("0, 1, abc").run()
    assert any("must be a number, got '0, 1, abc'" in e.value for e in at.error)
    assert at.button(key="cmp_sweep_btn").disabled
    at.text_input(key="cmp_lams").set_value("0.5").run()
    at.text_input(key="cmp_rates").set_value("0.01, 99").run()
    assert not at.exception
    errors = [seen(e.value) for e in at.error]
    assert len(errors) == 1 and "learning rate" in errors[0] and "99" in errors[0], errors
    assert at.button(key="cmp_run_btn").disabled


def test_lambda_sweep_tiny():
    at = app(TINY)
    at.text_input(key="cmp_lams").set_value("0.1, 10").run()
    at = run_to_end(at, key="cmp_sweep_btn")
    no_errors(at)
    sweep = at.session_state["cmp_sweep"]
    assert sweep.done and sweep.lams == (0.1, 10.0)
    rows = sweep.summary()
    assert [r["lambda"] for r in rows] == [0.1, 10.0]
    assert any(b.proto.label == "λ sweep curves (.csv)" for b in at.get("download_button"))



# ---- the density of a typed text (issue 18) --------------------------------------------------------------------------
def test_the_text_input_appears_for_the_text_density_and_keeps_its_text():
    at = app(TINY)
    assert not [t for t in at.text_input if t.key == "cmp_text"]  # a toy: no text input, no text in the link
    assert "text" not in at.query_params
    at.selectbox(key="cmp_density").set_value("text").run()
    no_errors(at)
    assert at.text_input(key="cmp_text").value == presets.PLAYGROUND_EXTRA["text"]
    at.text_input(key="cmp_text").set_value("Hi").run()
    assert at.query_params["density"] == "text" and at.query_params["text"] == "Hi"
    at.selectbox(key="cmp_density").set_value("moons").run()  # hidden: the typed text is kept, not in the link
    no_errors(at)
    assert "text" not in at.query_params
    at.selectbox(key="cmp_density").set_value("text").run()
    no_errors(at)
    assert at.text_input(key="cmp_text").value == "Hi" and at.query_params["text"] == "Hi"
    help_text = at.selectbox(key="cmp_density").help
    assert "Pictures and drawings" in help_text and "Playground" in help_text


def test_a_tiny_run_on_typed_text_from_a_link():
    at = run_to_end(app({**TINY, "density": "text", "text": "Hi"}))
    no_errors(at)
    job = at.session_state["cmp_job"]
    assert job.done and job.settings.text == "Hi" and job.settings.density == "text"
    curves = job.curves()
    assert np.isfinite(curves["true_nll"])
    assert all(np.all(np.isfinite(d["loss"])) for d in curves["methods"].values())
    assert len(at.get("plotly_chart")) == 2
    assert any("--density text --text Hi" in c.value for c in at.caption)  # the headless command carries the text


def test_bad_text_is_one_sentence_and_blocks_run():
    long = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    at = app({**TINY, "density": "text", "text": long})
    no_errors(at)
    notes = [seen(w.value) for w in at.warning]
    assert len(notes) == 1 and "\n" not in notes[0] and long in notes[0] and "at most 12 characters" in notes[0]
    assert at.text_input(key="cmp_text").value == "FLOW" and at.query_params["text"] == "FLOW"
    at.text_input(key="cmp_text").set_value("").run()
    assert not at.exception
    assert [seen(e.value) for e in at.error] == ["Type some text to learn, e.g. FLOW."]
    assert at.button(key="cmp_run_btn").disabled


# ---- the budget (issue 16) ------------------------------------------------------------------------------------------
ISSUE_LINK = {"density": "gaussian_mixture_nd", "dim": "128", "layers": "20", "inits": "20", "points": "20000"}
OOM = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 20615843020 bytes."


@pytest.fixture
def server_budget(monkeypatch):
    monkeypatch.setenv("FLOWLAB_SESSION_MEMORY_MB", "512")
    monkeypatch.setenv("FLOWLAB_JOB_SECONDS", "300")


def test_the_issue_link_is_refused_before_any_job(server_budget):
    at = app(ISSUE_LINK)
    assert not at.exception and not at.warning  # every value is inside the schema's limits
    run, sweep = [seen(e.value) for e in at.error]  # the convergence tab's and the λ sweep's
    assert re.match(r"This run needs about [\d,]+ GiB and about", run) and run.count(". ") == 0, run
    assert "20 inits × 20 layers × D = 128 on 20,000 points, 7 learning rates" in run and "512 MB per session" in run
    assert sweep.startswith("This run needs about") and "6 λ values" in sweep
    assert at.button(key="cmp_run_btn").disabled and at.button(key="cmp_sweep_btn").disabled  # (the job checks too)
    at.run()
    assert not at.exception and "cmp_job" not in at.session_state and "cmp_sweep" not in at.session_state


def test_the_estimate_is_in_the_caption(server_budget):
    at = app()
    assert any("estimated at most" in c.value and "of compute" in c.value for c in at.caption)
    assert not at.button(key="cmp_run_btn").disabled


def test_an_allocation_failure_ends_the_run_with_one_sentence(server_budget, monkeypatch):
    from flowlab.compare import jobs

    calls = []

    def oom(self, lr, steps):
        calls.append(steps)
        raise RuntimeError(OOM)

    monkeypatch.setattr(jobs._Group, "step", oom)
    at = run_to_end(app(TINY))
    assert not at.exception
    job = at.session_state["cmp_job"]
    assert job.error and job.finished and at.session_state["cmp_active"] is None
    assert [seen(e.value) for e in at.error] == [job.error]
    assert "could not allocate 19 GiB" in job.error
    at.run()
    at.run()
    assert len(calls) == 1  # no retry loop
    assert not at.button(key="cmp_run_btn").disabled and at.button(key="cmp_stop_btn").disabled
