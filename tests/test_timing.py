"""flowlab.timing.sample_times with a fake clock: the calls per sample double until one sample lasts min_sample_s,
sampling ends early at the deadline or on should_stop, and at least one sample is always taken.  No real time is
measured here."""
import ast
import inspect

import pytest

from flowlab import timing


class FakeClock:
    """flowlab.timing.clock's stand-in: time moves only when the fake function is called."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(timing, "clock", c)
    return c


def costly(clock, seconds, calls=None):
    """A function whose every call costs ``seconds`` of fake time (and is counted in ``calls``)."""

    def fn():
        clock.t += seconds
        if calls is not None:
            calls.append(1)

    return fn


def test_number_doubles_until_a_sample_lasts_min_sample_s(clock):
    calls = []
    times, number = timing.sample_times(costly(clock, 1e-4, calls), repeats=3, min_sample_s=1e-3)
    assert number == 16  # 1, 2, 4, 8 calls last 0.1 to 0.8 ms; 16 calls last 1.6 ms
    assert times == pytest.approx([1e-4] * 3)
    assert len(calls) == 1 + 2 + 4 + 8 + 16 + 2 * 16  # the sample that reached min_sample_s is the first repeat


def test_slow_calls_are_sampled_one_by_one(clock):
    times, number = timing.sample_times(costly(clock, 0.5), repeats=4, min_sample_s=1e-3)
    assert number == 1 and times == pytest.approx([0.5] * 4)


def test_max_number_caps_the_doubling(clock):
    calls = []
    times, number = timing.sample_times(costly(clock, 0.0, calls), repeats=2, min_sample_s=1.0, max_number=8)
    assert number == 8 and times == [0.0, 0.0] and len(calls) == 1 + 2 + 4 + 8 + 8


def test_deadline_ends_sampling_early(clock):
    # each sample lasts 0.1 s; the next one would end past the deadline after the second
    times, number = timing.sample_times(costly(clock, 0.1), repeats=10, deadline=0.25)
    assert len(times) == 2 and number == 1
    # a deadline already passed still gives one sample
    clock.t = 10.0
    assert len(timing.sample_times(costly(clock, 0.1), repeats=10, deadline=5.0)[0]) == 1


def test_should_stop_ends_sampling_early(clock):
    asked = []

    def stop():
        asked.append(1)
        return len(asked) >= 3

    times, _ = timing.sample_times(costly(clock, 0.1), repeats=10, should_stop=stop)
    assert len(times) == 3  # asked before the 2nd, 3rd and 4th sample; the third answer stops it
    assert len(timing.sample_times(costly(clock, 0.1), repeats=10, should_stop=lambda: True)[0]) == 1


@pytest.mark.parametrize("repeats", [0, -1, 0.5])
def test_at_least_one_repeat(clock, repeats):
    with pytest.raises(ValueError, match="at least one sample"):
        timing.sample_times(costly(clock, 0.1), repeats=repeats)


def test_median_and_best(clock):
    costs = iter([0.3, 0.1, 0.2, 0.5])

    def fn():
        clock.t += next(costs)

    assert timing.median_time(fn, repeats=3, min_sample_s=1e-3) == pytest.approx(0.2)
    costs = iter([0.3, 0.1, 0.2])
    assert timing.best_time(fn, repeats=3, min_sample_s=1e-3) == pytest.approx(0.1)


def test_standard_library_only():
    tree = ast.parse(inspect.getsource(timing))
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert mods <= {"__future__", "statistics", "time"}
