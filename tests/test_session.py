"""flowlab.session: the Playground's session without Streamlit — settings to a training worker, structural changes end
it, hyper-parameters reach it live, settings follow a choice of density or method, the fixed colour scale."""
import time

import numpy as np
import pytest

from flowlab import presets
from flowlab.runtime.scheduler import Scheduler
from flowlab.runtime.worker import Snapshot
from flowlab.session import (GRID_N, PlaygroundSession, PlaygroundView, data_plot_range, data_zmax, density_zmax,
                             divergence_advice, follow_choice, needs_rearm, repeated_points, steps_line)
from flowlab.settings import PLAYGROUND
from flowlab.train import Divergence, build_trainer


def tiny(**kw):
    s, _ = PLAYGROUND.parse_query({"density": "trimodal", "layers": "2", "batch": "16", "ntrain": "500",
                                   "warmup": "0"})
    s.update(kw)
    return s


def wait_for(sess, cond, timeout=60.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        snap = sess.snapshot()
        if cond(snap):
            return snap
        time.sleep(0.05)
    raise AssertionError(f"timed out; last snapshot: state {snap.state}, step {snap.step}")


@pytest.fixture
def sess():
    s = PlaygroundSession(scheduler=Scheduler(slots=1, max_active=4))
    yield s
    s.close()


def test_data_plot_range_covers_points():
    p = np.random.default_rng(0).normal(size=(1000, 2)) * [1.0, 3.0] + [5.0, 0.0]
    (x0, x1), (y0, y1) = data_plot_range(p)
    assert x0 < 3 and x1 > 7 and y0 < -6 and y1 > 6


def test_train_pause_step_reset_cycle(sess):
    assert sess.update(tiny()) is None and sess.worker is None and sess.snapshot().step == 0
    assert not sess.busy(sess.snapshot())
    sess.start()
    assert sess.busy(sess.snapshot())  # wanted at once, before the worker has read the message
    snap = wait_for(sess, lambda s: s.state == "running" and s.step > 0 and s.view is not None)
    assert snap.view["logq"].shape == (GRID_N, GRID_N) and snap.view["samples"].shape[1] == 2
    sess.pause()
    snap = wait_for(sess, lambda s: s.state == "paused" and s.handled == sess.sent)
    assert not sess.busy(snap) and sess.wanted is None
    k = snap.step
    time.sleep(0.3)
    assert sess.snapshot().step == k  # paused: nothing trains
    sess.step_once()
    snap = wait_for(sess, lambda s: s.handled == sess.sent and s.state == "paused")
    assert snap.step > k
    sess.reset()
    snap = wait_for(sess, lambda s: s.handled == sess.sent and s.step == 0)
    assert snap.state == "idle" and len(snap.evals["step"]) == 0
    # same seed -> same initial weights in a brand-new session
    other = PlaygroundSession(scheduler=Scheduler(slots=1, max_active=4))
    other.update(tiny())
    other.step_once()
    try:
        a = wait_for(other, lambda s: s.step > 0)
        sess.step_once()
        b = wait_for(sess, lambda s: s.step > 0 and s.handled == sess.sent)
        np.testing.assert_array_equal(np.asarray(a.model[1]["W"]), np.asarray(b.model[1]["W"]))
    finally:
        other.close()


def test_structural_change_stops_with_message_and_lr_change_keeps_training(sess):
    sess.update(tiny())
    sess.start()
    wait_for(sess, lambda s: s.state == "running" and s.step > 0)
    worker = sess.worker
    assert sess.update(tiny(lr=1e-4)) is None  # a hyper-parameter: sent to the running worker
    wait_for(sess, lambda s: s.handled == sess.sent)
    assert worker.trainer.hyper_kw["lr"] == 1e-4 and float(worker.trainer.hyper["lr"]) == pytest.approx(1e-4)
    assert sess.update(tiny(lr=1e-4, decay=5000, b2=0.95)) is None
    wait_for(sess, lambda s: s.handled == sess.sent)
    assert float(worker.trainer.hyper["decay"]) == 5000 and float(worker.trainer.hyper["b2"]) == pytest.approx(0.95)
    assert sess.worker is worker and sess.busy(sess.snapshot())  # still the same run, still training
    msg = sess.update(tiny(lr=1e-4, layers=3))
    assert "Training stopped" in msg and "number of layers" in msg and sess.worker is None
    worker.join(10)
    assert not worker.alive  # the old worker ended with its settings
    sess.step_once()
    wait_for(sess, lambda s: s.step > 0 and s.handled == sess.sent)
    msg = sess.update(tiny(lr=1e-4, layers=3, method="exact"))
    assert "discarded" in msg and "gradient method" in msg


def test_uploaded_data_trains_without_kl(sess):
    pts = np.random.default_rng(0).normal(size=(300, 2)) * [3.0, 0.5]
    sess.update(tiny(), data=pts, data_id="abc")
    assert sess.uploaded and sess.entropy() is None and sess.zmax() > 0
    sess.step_once()
    snap = wait_for(sess, lambda s: s.step > 0)
    assert np.isnan(snap.latest["kl"]) and np.isfinite(snap.latest["test_nll"])
    assert "uploaded data" in sess.update(tiny(), data=pts[:200], data_id="def")


def test_follow_choice_loads_the_tuned_settings_and_keeps_what_was_set_by_hand():
    s = PLAYGROUND.defaults(density="moons", method="relative")
    s = {**s, "method": "self_normalizing", "lr": 0.003}
    out, msg = follow_choice(s, edited={"lr"})
    snf = presets.tuned("moons", "self_normalizing")
    assert out["batch"] == snf.batch and out["lam"] == snf.lam and out["b2"] == snf.b2
    assert out["lr"] == 0.003  # set by hand: kept
    assert "self-normalizing" in msg and f"λ {snf.lam:g}" in msg and "kept the learning rate, which you set" in msg
    out2, msg2 = follow_choice(out, edited=set())
    assert out2 == {**out, "lr": snf.lr} and msg2.endswith(".")


def test_fixed_colour_scales_and_view():
    z = density_zmax("moons")
    assert z == density_zmax("moons") and 1.0 < z < 10.0  # cached; the moons peak is a few units
    pts = np.random.default_rng(0).normal(size=(5000, 2))
    zu = data_zmax(pts, data_plot_range(pts))
    assert 0.1 < zu < 0.5  # a standard normal peaks at 1/(2π) ≈ 0.16
    t = build_trainer("moons", layers=2, ntrain=200, ntest=50, batch=16, chunk=5)
    v = PlaygroundView(((-1.0, 1.0), (-1.0, 1.0)), n=10, n_samples=20)(t)
    assert v["logq"].shape == (10, 10) and v["samples"].shape == (20, 2) and np.all(np.isfinite(v["logq"]))


def test_divergence_advice_and_deep_flow_line():
    d = Divergence(12, 0.3, "Training diverged at step 12.")
    a = divergence_advice(d, (40, 1.234))
    assert "lower the learning rate (e.g. to 0.1)" in a and "**Best** puts back the weights of step 40" in a
    assert "**Best**" not in divergence_advice(d, None)
    rng = np.random.default_rng(0)
    fine = rng.normal(size=(200, 2))
    assert repeated_points(fine) is None and "lower the learning rate" in divergence_advice(d, None, fine)
    rep = np.concatenate([fine, np.repeat(fine[:1], 30, axis=0)])  # 30 of 230 points repeat the first one
    note = repeated_points(rep)
    assert note.startswith("30 of your 230 points repeat") and note.count(".") == 1
    a = divergence_advice(d, None, rep)
    assert "**The data:** 30 of your 230" in a and "learning rate" not in a
    assert steps_line(Snapshot(steps_per_s=120.0), 200).startswith("200 layers: this session trains 120 ")
    assert steps_line(Snapshot(steps_per_s=120.0), 50) is None


def test_the_chunk_does_not_depend_on_how_many_sessions_train():
    """Chunks shortened by the load at build time gave each session of a class its own chunk length (a compile
    each, inside the only slot) and unequal steps per turn."""
    sched = Scheduler(slots=1, max_active=10)
    quiet, busy = PlaygroundSession(scheduler=sched), PlaygroundSession(scheduler=sched)
    quiet.update(tiny())
    chunk = quiet._build_args()[1]["chunk"]
    for i in range(20):
        sched.join(f"session {i}")
    busy.update(tiny())
    assert busy._build_args()[1]["chunk"] == chunk


def test_redraw_timer_follows_the_load_and_the_line():
    from flowlab.runtime.scheduler import REDRAW_BASE_S, REDRAW_MOST_S, REDRAW_QUEUED_S

    sched = Scheduler(slots=1, max_active=10)
    s = PlaygroundSession(scheduler=sched)
    assert s.redraw_interval(Snapshot(state="running")) == REDRAW_BASE_S
    assert s.redraw_interval(Snapshot(state="queued")) == REDRAW_QUEUED_S
    for i in range(20):
        sched.join(f"session {i}")
    busy = s.redraw_interval(Snapshot(state="running"))
    assert busy == REDRAW_MOST_S
    # a page armed when it was alone (or in line) re-arms; small changes of the load do not rerun the page
    assert needs_rearm(REDRAW_BASE_S, busy) and needs_rearm(REDRAW_QUEUED_S, busy)
    assert not needs_rearm(busy, 0.9 * busy) and not needs_rearm(busy, busy)
