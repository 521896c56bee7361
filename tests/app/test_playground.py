"""AppTest of the Playground page: defaults, URL in/out, bad URL values, train/pause/step/reset with the background
worker, live learning-rate changes vs structural changes, settings that follow a choice, presets, divergence and
drift warnings, Best, CSV upload good and bad."""
import numpy as np
import pytest
from apputil import metric, no_errors, open_page, rerun_until, text_of, widget

from flowlab import presets
from flowlab.densities import REGISTRY as DENSITIES
from flowlab.gradients import PLAYGROUND_METHODS
from flowlab.settings import PLAYGROUND

TINY = {"density": "trimodal", "layers": "2", "batch": "16", "ntrain": "500", "warmup": "0"}


def app(query=None):
    return open_page("playground", query)


def step(at) -> int:
    return int(metric(at, "Step").replace(",", ""))


def sess(at):
    return at.session_state["pg_session"]


def settled(at) -> bool:
    """The worker has read every message the page sent and is not training."""
    s = sess(at)
    snap = s.snapshot()
    return snap.handled == s.sent and snap.state not in ("building", "running", "queued")


def settle(at):
    """Rerun until ``settled``, then once more: the worker may finish between a run and the check, and that last run
    draws its final snapshot."""
    rerun_until(at, settled)
    return at.run()


def test_widget_defaults_and_url_out():
    at = app()
    no_errors(at)
    d = PLAYGROUND.defaults()
    for f in PLAYGROUND.fields:
        if f.applies is None or f.applies(d):  # the text box etc. show only for their data source
            assert widget(at, f"pg_{f.key}").value == d[f.key], f.key
    assert widget(at, "pg_source").value == "toy"
    assert [o for o in widget(at, "pg_density").options][:3] == ["Mixture of 3 Gaussians (paper's MoG)",
                                                                 "Two moons (paper)", "Sine wave (paper)"]
    assert [b.label for b in at.button][:4] == ["Train", "Step", "Reset", "Best"]
    assert [b.proto.icon for b in at.button][:4] == [":material/play_arrow:", ":material/skip_next:",
                                                     ":material/restart_alt:", ":material/star:"]
    assert metric(at, "Step") == "0"
    assert not at.warning  # no URL notes
    assert dict(at.query_params) == PLAYGROUND.dump_query(d)  # every setting that applies goes out to the URL
    assert any("Device:" in m.value for m in at.markdown)
    assert [m.label for m in at.metric] == ["Step", "Steps/s", "Elapsed", "Test NLL", "KL(p‖q)"]


def test_url_in_sets_widgets_and_comes_back_out():
    q = {"density": "sine", "layers": "7", "method": "exact", "activation": "tanh_linear", "lr": "0.01",
         "batch": "32", "seed": "5", "contour": "1"}
    at = app(q)
    no_errors(at)
    want, notes = PLAYGROUND.parse_query(q)
    assert notes == [] and want["layers"] == 7 and want["contour"] is True
    for k in q:
        assert widget(at, f"pg_{k}").value == want[k], k
    out = dict(at.query_params)
    assert {k: out[k] for k in q} == q
    at = app({"density": "moons", "layers": "20", "method": "relative"})  # the Learn page's link shape
    assert widget(at, "pg_layers").value == 20 and widget(at, "pg_method").value == "relative"


def test_bad_url_values_fall_back_with_visible_notes():
    at = app({"density": "unicorn", "layers": "abc", "lr": "-3", "method": "magic", "batch": "99999"})
    assert not at.exception
    d = PLAYGROUND.defaults()
    for k in ("density", "layers", "lr", "method"):
        assert widget(at, f"pg_{k}").value == d[k]
    assert widget(at, "pg_batch").value == PLAYGROUND["batch"].hi  # above the maximum: clamped, not an error
    notes = " ".join(text_of(w.value) for w in at.warning)
    for bad in ("unicorn", "'abc'", "'-3'", "'magic'", "'99999'"):
        assert bad in notes
    assert dict(at.query_params)["layers"] == str(d["layers"])  # corrected URL goes back out


def test_train_pause_step_reset_cycle():
    at = app(TINY)
    no_errors(at)
    at.button(key="pg_train").click().run()
    no_errors(at)
    assert at.button(key="pg_train").label == "Pause"  # at once, before the worker has reported anything
    rerun_until(at, lambda a: step(a) > 0)
    assert np.isfinite(float(metric(at, "KL(p‖q)"))) and np.isfinite(float(metric(at, "Test NLL")))
    s1 = step(at)
    rerun_until(at, lambda a: step(a) > s1)  # training goes on between redraws, not inside them
    model = at.session_state["flowlab_model"]
    assert set(model) == {"spec", "params", "norm", "density", "data", "labels", "method", "source"}
    assert model["density"] == "trimodal" and model["source"] == "playground" and model["spec"].layers == 2
    assert model["data"].shape[1] == 2 and len(model["data"]) <= 2000 and len(model["labels"]) == len(model["data"])
    at.button(key="pg_train").click().run()  # pause
    settle(at)
    assert at.button(key="pg_train").label == "Resume"
    paused = step(at)
    at.run()
    assert step(at) == paused  # paused: nothing trains
    assert any(e.label == "Compare with the truth" for e in at.expander)
    assert any("KL(p‖q) =" in m.value for m in at.markdown)
    assert sorted(b.label for b in at.get("download_button")) == sorted([
        "Model (.npz)", "Curves (.csv)", "Learned density (.png)", "Training animation (.gif)",
        "Learned density (.html)", "Curves figure (.html)"])
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: settled(a) and step(a) > paused)
    assert at.button(key="pg_train").label == "Resume"
    at.button(key="pg_reset").click().run()
    rerun_until(at, lambda a: settled(a) and step(a) == 0)
    no_errors(at)
    assert at.button(key="pg_train").label == "Train"


def test_lr_change_applies_live_structural_change_stops():
    at = app(TINY)
    at.button(key="pg_train").click().run()
    rerun_until(at, lambda a: step(a) > 0)
    worker = sess(at).worker
    widget(at, "pg_lr").set_value(0.0005).run()
    no_errors(at)
    rerun_until(at, lambda a: worker.trainer.hyper_kw["lr"] == 0.0005)
    s = step(at)
    rerun_until(at, lambda a: step(a) > s)  # kept training, no reset
    assert sess(at).worker is worker and dict(at.query_params)["lr"] == "0.0005"
    widget(at, "pg_layers").set_value(3).run()
    assert sess(at).worker is None
    assert any("Training stopped" in w.value and "number of layers" in text_of(w.value) for w in at.warning)
    assert at.button(key="pg_train").label == "Train"


def test_choosing_a_method_loads_its_tuned_settings_and_keeps_hand_edits():
    at = app({"density": "moons"})
    widget(at, "pg_lr").set_value(0.0042).run()  # set by hand
    widget(at, "pg_method").set_value("self_normalizing").run()
    no_errors(at)
    snf = presets.tuned("moons", "self_normalizing")
    assert widget(at, "pg_batch").value == snf.batch and widget(at, "pg_lam").value == snf.lam
    assert widget(at, "pg_lr").value == 0.0042
    info = " ".join(text_of(i.value) for i in at.info)
    assert "Loaded the tuned settings for Two moons (paper) with the self-normalizing" in info
    assert "kept the learning rate, which you set" in info
    widget(at, "pg_density").set_value("sine").run()
    assert widget(at, "pg_init").value == presets.tuned("sine", "self_normalizing").init


@pytest.mark.parametrize("density", list(DENSITIES))
def test_every_density_and_method_opens_with_its_tuned_preset(density):
    """A link naming only the density, then each method picked in turn: every training setting on the page is the
    tuned preset of that (density, method) pair."""
    at = app({"density": density})
    for method in PLAYGROUND_METHODS:
        widget(at, "pg_method").set_value(method).run()
        no_errors(at)
        want = presets.tuned(density, method).settings()
        shown = {k: widget(at, f"pg_{k}").value for k in want if k != "standardize"}
        assert shown == {k: v for k, v in want.items() if k != "standardize"}, (density, method)


def test_divergence_warning_explains_and_points_to_best():
    """A divergence stops training with the guard's message, a hint with a lower learning rate, and (when an earlier
    chunk had a lower test NLL than the weights left in place) the Best step to go back to."""
    at = app(TINY)
    for _ in range(2):
        at.button(key="pg_step_btn").click().run()
        settle(at)
    no_errors(at)
    t = sess(at).worker.trainer
    best_step = t.best.step
    # damage the weights (the rollback target too), then make every loss count as exploded: the guard fires at once
    t.state = t.state._replace(params={**t.state.params, "W": 3.0 * t.state.params["W"]})
    t._prev = t.state
    t.set_hyper(explode=-1e9)
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: settled(a) and any("diverged" in w.value for w in a.warning))
    no_errors(at)
    warn = next(text_of(w.value) for w in at.warning if "diverged" in w.value)
    assert "rolled back" in warn and "lower the learning rate (e.g. to" in warn
    assert f"**Best** puts back the weights of step {best_step:,}" in warn
    assert at.button(key="pg_train").label == "Resume"  # stopped, trained weights kept
    t.best = None  # with nothing better to go back to, the hint does not offer it
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: settled(a) and sess(a).snapshot().divergence is not None
                and sess(a).snapshot().best is None)
    at.run()  # the page draws the snapshot the worker settled on
    warns = [text_of(w.value) for w in at.warning if "diverged" in w.value]
    assert len(warns) == 1 and "lower the learning rate" in warns[0] and "**Best**" not in warns[0]


def test_snf_inverse_drift_warning_is_shown():
    """Learned inverses knocked far off W⁻¹ (R = 20 W⁻¹: one chunk cannot pull them back) bring a warning that names
    ‖R W − I‖ and λ; healthy ones do not."""
    at = app({**TINY, "method": "self_normalizing", "lam": "3"})
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: settled(a) and step(a) > 0)
    no_errors(at)
    assert not any("learned inverses" in text_of(w.value) for w in at.warning)
    t = sess(at).worker.trainer
    t.state = t.state._replace(params={**t.state.params, "R": 20.0 * t.state.params["R"]})
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: settled(a) and any("learned inverses no longer match" in w.value for w in a.warning))
    assert any("λ (now 3)" in text_of(w.value) for w in at.warning)


def test_presets_load_values():
    at = app({"density": "sine"})
    next(b for b in at.button if b.label == "Paper preset").click().run()
    no_errors(at)
    p = presets.paper("sine")
    assert widget(at, "pg_layers").value == p.layers and widget(at, "pg_batch").value == p.batch
    assert widget(at, "pg_lr").value == p.lr
    next(b for b in at.button if b.label == "Tuned preset").click().run()
    d = presets.tuned("sine")
    assert widget(at, "pg_layers").value == d.layers and widget(at, "pg_lr").value == d.lr
    # moons is tuned with the data-dependent initialisation; the paper's preset goes back to orthogonal weights and
    # the paper's batch 100
    tuned = presets.tuned("moons")
    at = app({"density": "moons"})
    assert widget(at, "pg_init").value == "data" and widget(at, "pg_batch").value == tuned.batch != 100
    next(b for b in at.button if b.label == "Paper preset").click().run()
    assert widget(at, "pg_init").value == "orthogonal" and widget(at, "pg_batch").value == 100
    assert at.query_params["batch"] == "100"
    next(b for b in at.button if b.label == "Tuned preset").click().run()
    assert widget(at, "pg_init").value == "data" and widget(at, "pg_batch").value == tuned.batch
    at = app({"density": "rings"})  # no paper preset for densities the paper did not use
    assert next(b for b in at.button if b.label == "Paper preset").disabled


def _upload(at, name, content):
    at.radio(key="pg_source").set_value("upload").run()
    at.file_uploader(key="pg_upload").upload(name, content, "text/csv")
    return at.run()


def test_csv_upload_sits_next_to_the_data_choice_and_trains_without_kl():
    at = app(TINY)
    at.radio(key="pg_source").set_value("upload").run()
    side = [type(e).__name__ for e in at.sidebar]
    assert at.sidebar.file_uploader and side.index("FileUploader") < side.index("Selectbox")
    pts = np.random.default_rng(0).normal(size=(200, 2)) * [3.0, 0.5]
    at = _upload(at, "pts.csv", ("x,y\n" + "\n".join(f"{a},{b}" for a, b in pts)).encode())
    no_errors(at)
    at.button(key="pg_step_btn").click().run()
    rerun_until(at, lambda a: settled(a) and step(a) > 0)
    no_errors(at)
    assert metric(at, "KL(p‖q)") == "n/a" and np.isfinite(float(metric(at, "Test NLL")))
    assert not any(e.label == "Compare with the truth" for e in at.expander)
    model = at.session_state["flowlab_model"]
    assert model["density"] is None and model["labels"] is None and len(model["data"]) == 200


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"x,y,z\n1,2,3\n", "3 columns"),
    (b"x,y\n" + b"1,2\n" * 12 + b"1,hello\n", "'hello' is not a number"),
    (b"x,y\n" + b"1,2\n" * 12 + b"nan,2\n", "NaN"),
])
def test_csv_upload_bad_is_rejected_precisely(content, match):
    at = _upload(app(TINY), "bad.csv", content)
    assert not at.exception
    assert len(at.error) == 1 and "bad.csv" in text_of(at.error[0].value) and match in text_of(at.error[0].value)
    assert at.button(key="pg_train").disabled


def test_best_button_restores_the_lowest_test_nll():
    at = app(TINY)
    at.button(key="pg_best").click().run()  # nothing trained yet: nothing to do, nothing breaks
    no_errors(at)
    for _ in range(3):
        at.button(key="pg_step_btn").click().run()
        settle(at)
    at.number_input(key="pg_lr").set_value(1e-6).run()  # so the next chunk cannot repair what we spoil
    t = sess(at).worker.trainer
    t.state = t.state._replace(params={**t.state.params, "b": t.state.params["b"] + 4.0})  # spoil the weights
    at.button(key="pg_step_btn").click().run()
    settle(at)
    spoiled = float(metric(at, "Test NLL"))
    best = t.best
    assert spoiled > best.test_nll + 1.0
    at.button(key="pg_best").click().run()
    rerun_until(at, lambda a: settled(a) and abs(float(metric(a, "Test NLL")) - best.test_nll) < 1e-3)
    no_errors(at)
    assert any(f"Restored the weights of step {best.step:,}" in c.value for c in at.caption)
    assert at.button(key="pg_train").label == "Resume"


def test_settings_over_the_servers_budget_are_refused_with_one_sentence(monkeypatch):
    monkeypatch.setenv("FLOWLAB_SESSION_MEMORY_MB", "10")
    at = app({"density": "moons", "layers": "200", "batch": "4096"})
    assert not at.exception
    errs = [text_of(e.value) for e in at.error]
    assert len(errs) == 1 and errs[0].startswith("This run needs about") and "10 MB per session" in errs[0]
    assert at.button(key="pg_train").disabled and at.button(key="pg_step_btn").disabled
    widget(at, "pg_layers").set_value(5).run()  # a run that fits: the refusal goes, Train comes back
    assert not at.error and not at.button(key="pg_train").disabled
