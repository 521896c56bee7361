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
    assert s.stats() == {"slots": 1, "max_active": 2, "active": 2, "waiting": 0, "busy": 0}


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
