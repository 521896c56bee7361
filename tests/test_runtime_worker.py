"""flowlab.runtime.worker: the training worker's lifecycle with a stand-in trainer and a fake clock — messages take
effect within one chunk, the worker pauses itself when nobody watches, ends with its session, and reports errors."""
import threading
import time

import numpy as np
import pytest

from flowlab.history import Series
from flowlab.runtime.scheduler import Scheduler
from flowlab.runtime.worker import TrainingWorker, bytes_of
from flowlab.train import Checkpoint, Divergence

CHUNK = 10


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class FakeTrainer:
    """Duck-typed Trainer: a chunk adds CHUNK steps (optionally waiting for ``gate``), the loss falls with the step."""

    spec = params = norm = None

    def __init__(self, gate=None, diverge_at=None):
        self.step, self.gate, self.diverge_at = 0, gate, diverge_at
        self.entered = threading.Event()
        self.hyper_kw = {"lr": 0.01}
        self.reset()

    def reset(self):
        self.step, self.elapsed, self.stopped = 0, 0.0, False
        self.evals, self.history = Series(64, ("step", "time", "test_nll", "kl")), Series(64)
        self.best, self.divergences, self.restored = None, [], None

    def run_chunk(self):
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
            self.gate.clear()
        if self.stopped:
            return None
        if self.diverge_at is not None and self.step + CHUNK >= self.diverge_at:
            self.stopped = True
            d = Divergence(self.diverge_at, self.hyper_kw["lr"], "Training diverged (fake).")
            self.divergences.append(d)
            return d
        self.step += CHUNK
        nll = 1.0 + 10.0 / self.step
        self.history.extend({"step": np.arange(self.step - CHUNK + 1, self.step + 1), "loss": np.full(CHUNK, nll)})
        self.evals.append({"step": self.step, "time": 0.0, "test_nll": nll, "kl": nll - 1.0})
        if self.best is None or nll < self.best.test_nll:
            self.best = Checkpoint(self.step, object(), {"test_nll": nll, "kl": nll - 1.0})
        return None

    @property
    def last_chunk_test_nll(self):
        return self.evals.latest["test_nll"]

    def resume(self):
        self.stopped = False

    def set_hyper(self, **kw):
        if kw.get("lr", 1.0) <= 0:
            raise ValueError("Learning rate must be a positive number.")
        self.hyper_kw.update(kw)

    def restore_best(self):
        return None

    def inverse_drift_warning(self):
        return None

    def config_dict(self):
        return {"steps": self.step}


def wait_for(cond, timeout=10.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return True
        time.sleep(0.01)
    return False


def make(trainer, **kw):
    return TrainingWorker(lambda: trainer, Scheduler(slots=1, max_active=4), **kw)



def _end(workers, gate):
    """Stop the workers, open the gate their fake chunks wait at, and join them."""
    for w in workers:
        w.stop()
    gate.set()
    for w in workers:
        w.join(5)

def test_start_pause_step_reset_and_messages_counted():
    t = FakeTrainer()
    w = make(t, publish_s=0.0)
    try:
        assert wait_for(lambda: w.snapshot().state == "idle")
        w.start()
        assert wait_for(lambda: w.snapshot().step >= 5 * CHUNK)
        w.pause()
        assert wait_for(lambda: w.snapshot().state == "paused")
        paused = w.snapshot()
        time.sleep(0.3)
        assert w.snapshot().step == paused.step and w.snapshot().handled == 2  # paused: nothing trains
        w.step()
        assert wait_for(lambda: w.snapshot().handled == 3 and w.snapshot().state == "paused")
        assert w.snapshot().step == paused.step + CHUNK  # exactly one chunk
        w.set_hyper(lr=0.5)
        assert wait_for(lambda: t.hyper_kw["lr"] == 0.5)
        w.set_hyper(lr=-1.0)  # a bad value: one sentence, the old value stays
        assert wait_for(lambda: (w.snapshot().note or "").startswith("Learning rate"))
        assert t.hyper_kw["lr"] == 0.5
        w.reset()
        assert wait_for(lambda: w.snapshot().step == 0 and w.snapshot().state == "idle")
        snap = w.snapshot()
        assert snap.wall_s == 0.0 and bytes_of(snap) < 10_000
    finally:
        w.stop()
        w.join(5)
    assert not w.alive and w.snapshot().state == "stopped"


def test_pause_lands_within_one_chunk():
    gate = threading.Event()
    t = FakeTrainer(gate=gate)
    w = make(t, publish_s=0.0)
    try:
        w.start()
        assert t.entered.wait(5)  # inside the first chunk
        w.pause()  # arrives while the chunk runs
        gate.set()  # the chunk finishes
        assert wait_for(lambda: w.snapshot().state == "paused")
        assert w.snapshot().step == CHUNK  # the chunk in progress counted, no further one started
        gate.set()  # would let another chunk run if one were started
        time.sleep(0.3)
        assert w.snapshot().step == CHUNK
    finally:
        w.stop()
        gate.set()
        w.join(5)


def test_idle_pause_then_end_and_session_end():
    clock = FakeClock()
    t = FakeTrainer()
    w = make(t, publish_s=0.0, clock=clock, idle_pause_s=30, idle_stop_s=600)
    try:
        w.start()
        assert wait_for(lambda: w.snapshot().step > 0)
        clock.t += 31  # nobody asked for a snapshot for 31 s (the snapshot() calls above count as watching)
        assert wait_for(lambda: w._snap.state == "paused")  # read without counting as a look
        assert "nobody watched" in w._snap.note
        clock.t += 600
        w.join(5)
        assert not w.alive and w._snap.state == "stopped"
    finally:
        w.stop()
    alive = [True]
    w2 = make(FakeTrainer(), alive=lambda: alive[0])
    assert wait_for(lambda: w2.snapshot().state == "idle")
    alive[0] = False  # the browser session is gone
    w2.join(5)
    assert not w2.alive


def test_divergence_stops_training_and_build_errors_are_sentences():
    t = FakeTrainer(diverge_at=3 * CHUNK)
    w = make(t, publish_s=0.0)
    try:
        w.start()
        assert wait_for(lambda: w.snapshot().divergence is not None)
        snap = w.snapshot()
        assert snap.state == "paused" and snap.step == 2 * CHUNK and "diverged" in snap.divergence.message
    finally:
        w.stop()
        w.join(5)

    def bad():
        raise ValueError("The batch size must be between 1 and 4,096, got 0.")

    w = TrainingWorker(bad, Scheduler(slots=1, max_active=1))
    w.join(5)
    assert w.snapshot().state == "error" and w.snapshot().error.startswith("The batch size")


def test_a_full_scheduler_queues_with_a_place_in_line():
    sched = Scheduler(slots=1, max_active=1)
    gate = threading.Event()
    first = TrainingWorker(lambda: FakeTrainer(gate=gate), sched, publish_s=0.0)
    second = TrainingWorker(lambda: FakeTrainer(), sched, publish_s=0.0)
    try:
        first.start()
        assert wait_for(lambda: sched.place(first) == 0)
        second.start()
        assert wait_for(lambda: second.snapshot().state == "queued")
        snap = second.snapshot()
        assert snap.place == 1 and "#1 in line" in snap.note
        first.pause()
        gate.set()
        assert wait_for(lambda: second.snapshot().state == "running" and second.snapshot().step > 0)
    finally:
        _end((first, second), gate)


@pytest.mark.parametrize("n", [3])
def test_many_workers_share_the_slots_and_all_progress(n):
    sched = Scheduler(slots=1, max_active=n)
    ws = [TrainingWorker(lambda: FakeTrainer(), sched, publish_s=0.0) for _ in range(n)]
    try:
        for w in ws:
            w.start()
        assert wait_for(lambda: all(w.snapshot().step >= 20 * CHUNK for w in ws))
    finally:
        for w in ws:
            w.stop()
        for w in ws:
            w.join(5)


def test_workers_stopped_while_waiting_behind_a_long_build_end_at_once():
    """A soak run found closed sessions' workers piling up in line behind one slow compile: a stop must end a
    worker that is still waiting for its turn to build."""
    import threading

    release = threading.Event()
    sched = Scheduler(slots=1, max_active=10)

    def slow_build():
        release.wait(30)
        raise ValueError("never mind")

    first = TrainingWorker(slow_build, sched)
    waiting = [TrainingWorker(FakeTrainer, sched) for _ in range(5)]
    time.sleep(0.3)
    for w in waiting:
        w.stop()
    for w in waiting:
        w.join(3)
    assert not any(w.alive for w in waiting) and first.alive
    assert all(w.snapshot().state == "stopped" for w in waiting)
    release.set()
    first.join(5)
    assert not first.alive


def test_pause_is_read_while_waiting_for_a_turn():
    """Issue 19: Pause waited until the worker's turn came (6 s at 10 sessions, never at 20)."""
    sched = Scheduler(slots=1, max_active=4)
    t = FakeTrainer()
    w = TrainingWorker(lambda: t, sched, publish_s=0.0)
    holder = sched.turn("another session's chunk")
    try:
        assert wait_for(lambda: w.snapshot().state == "idle")
        holder.__enter__()  # the only slot is taken for as long as this test likes
        w.start()
        assert wait_for(lambda: w.snapshot().state == "running")  # admitted, told so before its first turn
        w.pause()
        assert wait_for(lambda: w.snapshot().handled == 2 and w.snapshot().state == "idle")
        assert w.snapshot().step == 0 and sched.stats()["active"] == 0 and sched.stats()["busy"] == 1
    finally:
        holder.__exit__(None, None, None)
        w.stop()
        w.join(5)


def test_a_message_while_waiting_keeps_the_place_in_line():
    sched = Scheduler(slots=1, max_active=4)
    order = []

    class Recording(FakeTrainer):
        def __init__(self, name):
            self.name = name
            super().__init__()

        def run_chunk(self):
            order.append(self.name)
            return super().run_chunk()

    ta, tb = Recording("a"), Recording("b")
    a = TrainingWorker(lambda: ta, sched, publish_s=0.0)
    b = TrainingWorker(lambda: tb, sched, publish_s=0.0)
    holder = sched.turn("x")
    try:
        assert wait_for(lambda: a.snapshot().state == "idle" and b.snapshot().state == "idle")
        holder.__enter__()
        a.start()
        assert wait_for(lambda: a.snapshot().state == "running" and a in sched._waiting)
        b.start()
        assert wait_for(lambda: b.snapshot().state == "running" and b in sched._waiting)
        a.set_hyper(lr=0.5)  # read at once, and a stays ahead of b
        assert wait_for(lambda: a.snapshot().handled == 2 and a in sched._waiting)
        assert ta.hyper_kw["lr"] == 0.5 and order == []
        holder.__exit__(None, None, None)
        assert wait_for(lambda: len(order) >= 2)
        assert order[:2] == ["a", "b"]
    finally:
        for w in (a, b):
            w.stop()
        for w in (a, b):
            w.join(5)


def test_a_worker_in_line_republishes_its_view_without_recomputing_it():
    """Ten queued workers each recomputed the learned density every 0.2 s, outside the slots."""
    sched = Scheduler(slots=1, max_active=1)
    gate = threading.Event()
    views = []

    def view(trainer):
        views.append(trainer.step)
        return {"step": trainer.step}

    first = TrainingWorker(lambda: FakeTrainer(gate=gate), sched, publish_s=0.0)
    second = TrainingWorker(lambda: FakeTrainer(), sched, publish_s=0.0, view=view)
    try:
        assert wait_for(lambda: second.snapshot().state == "idle")
        first.start()
        assert wait_for(lambda: sched.place(first) == 0)
        second.start()
        assert wait_for(lambda: second.snapshot().state == "queued")
        for lr in (0.1, 0.2, 0.3):  # each message is read and republished while in line
            second.set_hyper(lr=lr)
        assert wait_for(lambda: second.snapshot().handled == 4)
        snap = second.snapshot()
        assert snap.state == "queued" and snap.view == {"step": 0} and views == [0]
        first.pause()
        gate.set()
        assert wait_for(lambda: second.snapshot().step > 0)
        assert views[-1] == second.snapshot().step  # new weights: a new view
    finally:
        _end((first, second), gate)


def test_a_running_worker_computes_a_view_only_for_a_page_that_has_read_the_last_one():
    """The page redraws a few times a second; views computed between two reads were never shown (and cost training
    time): while running, the worker publishes again only after the page has read the snapshot before."""
    views = []

    def view(trainer):
        views.append(trainer.step)
        return {"step": trainer.step}

    t = FakeTrainer()
    w = make(t, publish_s=0.0, view=view)
    try:
        assert wait_for(lambda: w.snapshot().state == "idle")
        w.start()
        assert wait_for(lambda: t.step >= 20 * CHUNK)  # trains on without anybody reading
        first = w._snap  # not read: no redraw asked
        assert t.step >= first.step + 19 * CHUNK and len(views) <= 3
        seen = w.snapshot()  # the page reads: the next chunk publishes a fresh view
        assert wait_for(lambda: w._snap.seq > seen.seq)
        assert w._snap.view == {"step": w._snap.step} and w._snap.step > seen.step
    finally:
        w.stop()
        w.join(5)


def test_queue_note_counts_in_words():
    from flowlab.runtime.worker import queue_note

    assert "(1 session trains at once" in queue_note(2, 1)
    assert "#3 in line (10 sessions train at once" in queue_note(3, 10)


def test_a_step_reads_as_training_until_its_chunk_is_done():
    """The page stops redrawing when the worker has read every message and is not training: a Step must not look
    finished before its chunk ran (the page would keep showing the old step)."""
    gate = threading.Event()
    t = FakeTrainer(gate=gate)
    w = make(t, publish_s=0.0)
    try:
        assert wait_for(lambda: w.snapshot().state == "idle")
        w.step()
        assert t.entered.wait(5)  # inside the step's chunk
        snap = w.snapshot()
        assert snap.handled == 1 and snap.state == "running" and snap.step == 0
        gate.set()
        assert wait_for(lambda: w.snapshot().step == CHUNK and w.snapshot().state == "paused")
    finally:
        w.stop()
        gate.set()
        w.join(5)
