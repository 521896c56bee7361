"""flowlab.runtime.scheduler: admission with an honest place in line, and fair first-come turns for the slots."""
import threading
import time

from flowlab.runtime.scheduler import Scheduler


def test_admission_line_and_leave():
    s = Scheduler(slots=1, max_active=2)
    a, b, c, d = "a", "b", "c", "d"
    assert s.join(a) == 0 and s.join(b) == 0
    assert s.join(c) == 1 and s.join(d) == 2 and s.place(d) == 2
    assert s.join(c) == 1  # asking again keeps the place
    s.leave(a)  # a pauses: the first in line is admitted
    assert s.place(c) == 0 and s.place(d) == 1 and s.place(a) == -1
    s.leave(d)
    assert s.stats() == {"slots": 1, "max_active": 2, "active": 2, "waiting": 0, "busy": 0, "building": 0}


def test_environment_sets_the_bounds(monkeypatch):
    monkeypatch.setenv("FLOWLAB_TRAIN_SLOTS", "3")
    monkeypatch.setenv("FLOWLAB_MAX_TRAINERS", "5")
    s = Scheduler()
    assert (s.slots, s.max_active) == (3, 5)
    monkeypatch.setenv("FLOWLAB_TRAIN_SLOTS", "zero")
    assert Scheduler().slots >= 1  # a bad value falls back to the CPU count


def test_turns_are_first_come_and_bounded_by_the_slots():
    s = Scheduler(slots=2, max_active=10)
    inside, peak, order, lock = [0], [0], [], threading.Lock()

    def work(name, n):
        for _ in range(n):
            with s.turn(name):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                    order.append(name)
                time.sleep(0.01)
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=work, args=(f"w{i}", 8)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert peak[0] <= 2 and len(order) == 32
    # fairness: while all four are waiting, nobody gets a second turn before everybody had a first
    counts = {f"w{i}": order[:16].count(f"w{i}") for i in range(4)}
    assert max(counts.values()) - min(counts.values()) <= 2, counts


def test_a_wait_for_a_turn_ends_when_it_is_cancelled():
    import threading

    from flowlab.runtime.scheduler import TurnCancelled

    s = Scheduler(slots=1, max_active=4)
    stop = threading.Event()
    got = []

    def waiter():
        try:
            with s.turn("b", stop.is_set):
                got.append("turn")
        except TurnCancelled:
            got.append("cancelled")

    with s.turn("a"):  # the slot is busy (a long compile)
        t = threading.Thread(target=waiter)
        t.start()
        stop.set()
        t.join(5)
        assert got == ["cancelled"] and not t.is_alive()
        assert s.stats()["busy"] == 1
    with s.turn("c"):  # the cancelled waiter left the line: the next one is served
        pass


def _waiter(s, name, order, errors, **kw):
    def run():
        try:
            with s.turn(name, **kw):
                order.append(name)
        except Exception as e:  # noqa: BLE001 - the test reads what happened
            errors.append((name, type(e).__name__))
    t = threading.Thread(target=run)
    t.start()
    return t


def _until(cond):
    for _ in range(2000):
        if cond():
            return True
        time.sleep(0.005)
    return False


def test_builds_and_chunks_alternate_so_a_class_starting_together_does_not_stall_the_trainers():
    """Issue 19's stall: 20 builds queued ahead of every chunk turn held the only slot for half a minute."""
    s = Scheduler(slots=1, max_active=10)
    order, errors, threads = [], [], []
    holder = s.turn("x")  # a chunk holds the slot while the others line up
    holder.__enter__()
    for name, build in (("b1", True), ("b2", True), ("b3", True), ("c1", False), ("c2", False)):
        threads.append(_waiter(s, name, order, errors, build=build))
        assert _until(lambda n=len(threads): len(s._waiting) == n)
    assert s.stats()["building"] == 3
    holder.__exit__(None, None, None)
    for t in threads:
        t.join(10)
    assert not errors and order == ["b1", "c1", "b2", "c2", "b3"]


def test_a_deferred_wait_keeps_its_place_and_does_not_block_the_line():
    from flowlab.runtime.scheduler import TurnDeferred

    s = Scheduler(slots=1, max_active=10)
    mail = threading.Event()
    order, errors = [], []
    holder = s.turn("x")
    holder.__enter__()
    a = _waiter(s, "a", order, errors, deferred=mail.is_set)
    assert _until(lambda: len(s._waiting) == 1)
    b = _waiter(s, "b", order, errors)
    assert _until(lambda: len(s._waiting) == 2)
    mail.set()
    s.wake()  # a message arrived: a reads it at once instead of after the turn in progress
    a.join(10)
    assert errors == [("a", TurnDeferred.__name__)] and order == []
    mail.clear()
    a = _waiter(s, "a", order, errors)  # back after reading its message: still ahead of b
    assert _until(lambda: len(s._waiting) == 2)
    holder.__exit__(None, None, None)
    for t in (a, b):
        t.join(10)
    assert order == ["a", "b"]

    # a worker that stepped out and has not come back yet is skipped, not waited for
    holder = s.turn("x")
    holder.__enter__()
    mail.set()
    errors.clear()
    order.clear()
    a = _waiter(s, "a", order, errors, deferred=mail.is_set)
    a.join(10)
    b = _waiter(s, "b", order, errors)
    assert _until(lambda: len(s._waiting) == 1)
    holder.__exit__(None, None, None)
    b.join(10)
    assert order == ["b"] and errors == [("a", TurnDeferred.__name__)]
    s.leave("a")  # it paused after reading its message: it leaves the line for good
    assert "a" not in s._turns


def test_redraw_interval_grows_with_the_sessions_and_is_capped_below_one_second():
    from flowlab.runtime.scheduler import REDRAW_BASE_S, REDRAW_MOST_S, REDRAW_QUEUED_S

    s = Scheduler(slots=1, max_active=5)
    assert s.redraw_interval() == REDRAW_BASE_S
    for i in range(20):  # 5 train, 15 wait in line: all of them redraw
        s.join(f"w{i}")
    assert s.redraw_interval() == REDRAW_MOST_S and REDRAW_MOST_S < 1.0  # >= 1 redraw/s with a margin
    assert s.redraw_interval(queued=True) == REDRAW_QUEUED_S


def test_an_accelerator_admits_more_trainers_by_default(monkeypatch):
    import flowlab.runtime.scheduler as S

    monkeypatch.delenv("FLOWLAB_TRAIN_SLOTS", raising=False)
    monkeypatch.delenv("FLOWLAB_MAX_TRAINERS", raising=False)
    monkeypatch.setattr(S, "usable_cpus", lambda: 2)
    assert S.default_slots("cpu") == 1 and S.default_slots("gpu") == S.ACCELERATOR_SLOTS > 1
    monkeypatch.setattr(S, "platform_name", lambda: "gpu")
    gpu = S.Scheduler()
    monkeypatch.setattr(S, "platform_name", lambda: "cpu")
    cpu = S.Scheduler()
    assert gpu.slots == S.ACCELERATOR_SLOTS and gpu.max_active == S.ACTIVE_PER_SLOT * gpu.slots > cpu.max_active
