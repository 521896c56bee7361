"""flowlab.session: the Playground state machine, without Streamlit."""
import time

import numpy as np
import pytest

from flowlab.flow import model_log_prob, model_samples
from flowlab.session import PlaygroundSession, data_plot_range, steps_per_second
from flowlab.settings import PLAYGROUND


def tiny(**kw):
    s, _ = PLAYGROUND.parse_query({"density": "trimodal", "layers": "2", "batch": "16", "ntrain": "500"})
    s.update(kw)
    return s


def test_steps_per_second_skips_first_chunk():
    assert np.isnan(steps_per_second({"step": [10], "time": [5.0]}))
    ev = {"step": [10, 20, 30], "time": [5.0, 5.1, 5.2]}  # first chunk includes a 5 s compile
    assert steps_per_second(ev) == pytest.approx(100.0)


def test_data_plot_range_covers_points():
    p = np.random.default_rng(0).normal(size=(1000, 2)) * [1.0, 3.0] + [5.0, 0.0]
    (x0, x1), (y0, y1) = data_plot_range(p)
    assert x0 < 3 and x1 > 7 and y0 < -6 and y1 > 6


def test_train_pause_step_reset_cycle():
    s = PlaygroundSession()
    assert s.update(tiny()) is None and s.trainer is None and s.step == 0
    assert s.tick() is None and s.trainer is None  # not running: nothing happens
    s.start()
    assert s.running
    s.tick()
    k = s.trainer.cfg.chunk
    assert s.step == k
    w_after = np.asarray(s.trainer.params["W"]).copy()
    s.pause()
    s.tick()
    assert s.step == k  # paused: a tick trains nothing
    s.step_once()
    assert s.step == 2 * k and not s.running
    s.start()
    s.tick()
    assert s.step == 3 * k  # resumed where it stopped
    init = np.asarray(s.trainer.initial_params["W"])
    s.reset()
    assert s.step == 0 and not s.running and s.trainer.evals["step"] == []
    np.testing.assert_array_equal(np.asarray(s.trainer.params["W"]), init)
    assert not np.allclose(w_after, init)
    # same seed -> same initial weights in a brand-new session
    s2 = PlaygroundSession()
    s2.update(tiny())
    np.testing.assert_array_equal(np.asarray(s2.ensure_trainer().params["W"]), init)


def test_structural_change_stops_with_message_and_lr_change_keeps_training():
    s = PlaygroundSession()
    s.update(tiny())
    s.start()
    s.tick()
    steps = s.step
    assert s.update(tiny(lr=1e-4)) is None  # hyper-parameter: applied in place
    assert s.running and s.step == steps and s.trainer.hyper_kw["lr"] == 1e-4
    assert float(s.trainer.hyper["lr"]) == pytest.approx(1e-4)
    assert s.update(tiny(lr=1e-4, decay=5000)) is None  # the schedule is a hyper-parameter too
    assert s.running and s.step == steps and float(s.trainer.hyper["decay"]) == 5000
    assert s.update(tiny(lr=1e-4, decay=5000, b2=0.95)) is None  # so is Adam's β₂
    assert s.running and s.step == steps and float(s.trainer.hyper["b2"]) == pytest.approx(0.95)
    s.tick()
    assert float(s.trainer.state.opt_state.hyperparams["b2"]) == pytest.approx(0.95)
    steps = s.step
    msg = s.update(tiny(lr=1e-4, layers=3))
    assert not s.running and s.trainer is None
    assert "Training stopped" in msg and "number of layers" in msg
    # not running but trained: discarding is announced too
    s.step_once()
    msg = s.update(tiny(lr=1e-4, layers=3, method="exact"))
    assert "discarded" in msg and "gradient method" in msg
    # untrained: silent
    assert s.update(tiny(lr=1e-4, layers=3, method="relative")) is None
    # the initialisation is structural: it decides the starting weights
    s.step_once()
    msg = s.update(tiny(lr=1e-4, layers=3, method="relative", init="data"))
    assert "discarded" in msg and "initialisation" in msg
    assert s.ensure_trainer().init == "data"


def test_divergence_stops_and_is_reported():
    s = PlaygroundSession()
    s.update(tiny(lr=1.0, clip=1e6, warmup=0))
    s.trainer = None
    s.ensure_trainer()
    s.trainer.set_hyper(explode=-1e9)  # every loss "explodes": the guard must fire on the first step
    s.start()
    div = s.tick()
    assert div is not None and not s.running and s.divergence is div and s.step == 0
    assert "diverged" in div.message


def test_uploaded_data_has_no_truth():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(300, 2)) * [2.0, 0.5]
    s = PlaygroundSession()
    s.update(tiny(), data=pts, data_id="abc")
    s.step_once()
    assert s.uploaded and s.entropy() is None and np.isnan(s.latest("kl")) and np.isfinite(s.latest("test_nll"))
    assert len(s.trainer.x_test) == 30  # 10 % held out
    msg = s.update(tiny(), data=pts[:200], data_id="def")
    assert "uploaded data" in msg


def test_model_helpers_shapes():
    s = PlaygroundSession()
    s.update(tiny())
    t = s.ensure_trainer()
    lp = model_log_prob(t.spec, t.params, t.norm, np.zeros((7, 2)))
    smp = model_samples(t.spec, t.params, t.norm, seed=1)
    assert lp.shape == (7,) and np.all(np.isfinite(lp)) and smp.shape[1] == 2 and np.all(np.isfinite(smp))
    assert s.entropy() == pytest.approx(-np.mean(t.test_logp))


def test_restore_best_pauses_and_returns_the_checkpoint():
    s = PlaygroundSession()
    s.update(tiny())
    assert s.restore_best() is None  # no trainer yet
    s.start()
    s.tick()
    s.tick()
    assert s.running
    t = s.trainer
    t.state = t.state._replace(params={**t.params, "b": t.params["b"] + 4.0})  # the current weights are now worse
    b = s.restore_best()
    assert not s.running and b is t.best and t.params is b.params
    assert s.latest("test_nll") == b.test_nll
    assert s.restore_best() is None  # already in place


def test_pause_waits_for_the_chunk_in_progress():
    """A Pause arriving (on another thread, as Streamlit delivers it) while a tick is inside a chunk returns only
    after that chunk, so the step count read after pause() is final."""
    import threading

    s = PlaygroundSession()
    s.update(tiny(layers=20, batch=512))
    s.step_once()  # compile first
    t = s.trainer
    entered = threading.Event()
    real = t.run_chunk

    def slow_chunk():
        entered.set()
        out = real()
        time.sleep(0.3)  # a chunk that is still busy when the click arrives
        return out

    t.run_chunk = slow_chunk
    s.start()
    worker = threading.Thread(target=s.tick)
    worker.start()
    assert entered.wait(10)
    s.pause()
    after_pause = s.step
    worker.join()
    assert s.step == after_pause and not s.running
    assert s.tick() is None and s.step == after_pause  # paused: ticks train nothing
