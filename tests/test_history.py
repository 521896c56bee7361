"""flowlab.history.Series: bounded, evenly thinned, the newest row always readable."""
import numpy as np
import pytest

from flowlab.history import Series


def test_short_series_keep_every_row():
    s = Series(cap=10)
    for i in range(5):
        s.append({"step": i + 1, "loss": 10.0 - i})
    assert s["step"] == [1, 2, 3, 4, 5] and s["loss"][-1] == 6.0 and len(s) == 5
    assert s.latest == {"step": 5.0, "loss": 6.0}


def test_long_series_stay_bounded_and_spread_over_the_run():
    s = Series(cap=64)
    for start in range(0, 100_000, 1000):  # chunks of 1000 steps
        steps = np.arange(start + 1, start + 1001)
        s.extend({"step": steps, "loss": 1.0 / steps})
    assert len(s) <= 64 and s.stride >= 100_000 // 64
    st = np.asarray(s["step"])
    assert st[0] == 1 and st[-1] == 100_000  # the newest row is always there
    gaps = np.diff(st[:-1])
    assert np.all(gaps == gaps[0])  # evenly thinned
    assert s.nbytes() < 64 * 2 * 64


def test_late_columns_rollback_and_clear():
    s = Series(cap=8)
    s.extend({"step": [1, 2, 3], "loss": [3.0, 2.0, 1.0]})
    s.append({"step": 4, "loss": 0.5, "inv_err": 0.1})
    assert np.isnan(s["inv_err"][0]) and s["inv_err"][-1] == 0.1
    s.truncate_after(2)
    assert s["step"] == [1, 2] and s.latest["step"] == 2
    s.append({"step": 3, "loss": 9.0})
    assert s["step"] == [1, 2, 3]
    s.clear()
    assert len(s) == 0 and s.latest is None and s.get("step") is None
    with pytest.raises(ValueError):
        Series(cap=1)
