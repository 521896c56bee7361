"""flowlab.benchmark.measure: one point and its guards (prediction, time cap, memory limit, errors).  Compiles only
at D in {4, 8, 16}; the time cap is exercised with a fake clock, never with real elapsed times."""
import numpy as np
import pytest

from flowlab import benchmark as B
from flowlab import gradients as G
from flowlab import timing
from flowlab.benchmark import measure as M
from flowlab.gradients import REGISTRY
from flowlab.plots import timing as P


class TickingClock:
    """Stands in for flowlab.timing.clock: every reading is ``tick`` seconds after the previous one."""

    def __init__(self, tick: float):
        self.t, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.t += self.tick
        return self.t


def test_measure_one_point():
    cfg = B.BenchConfig(dims=(8,), methods=("self_normalizing",), batch=10, repeats=2)
    p = B.measure_point("snf", 8, cfg)
    assert p.method == "self_normalizing" and p.status == "ok" and p.note == ""
    assert 1 <= len(p.times_s) <= 2 and p.time_s == pytest.approx(float(np.median(p.times_s)))
    assert p.calls_per_sample >= 1 and p.compile_s > 0 and p.first_call_s > 0 and p.mem_bytes > 0


def test_make_inputs():
    cfg = B.BenchConfig(dims=(8,), batch=10, layers=3)
    spec, params, x = B.make_inputs(8, cfg)
    assert (spec.dim, spec.layers) == (8, 3) and x.shape == (10, 8)
    W = np.asarray(params["W"])
    assert W.shape == (3, 8, 8) and np.allclose(np.asarray(params["R"]), np.swapaxes(W, -1, -2))
    assert np.abs(W - np.eye(8)).max() < 0.05 and not np.asarray(params["b"]).any()
    _, params2, x2 = B.make_inputs(8, cfg)
    assert np.array_equal(W, np.asarray(params2["W"])) and np.array_equal(np.asarray(x), np.asarray(x2))


def test_cap_stops_a_method_and_skips_larger_d(monkeypatch):
    # every clock reading 1 s later: the first point still runs (one timed sample) but takes longer than the 0.5 s
    # cap, so the method stops after it
    monkeypatch.setattr(timing, "clock", TickingClock(1.0))
    res = B.run_benchmark(B.BenchConfig(dims=(4, 8, 16), methods=("relative",), repeats=5, batch=10, cap=0.5))
    assert [p.status for p in res.points] == ["ok", "skipped", "skipped"]
    assert len(res.points[0].times_s) == 1 and "stopped after this D" in res.points[0].note
    assert "1 of 5 repeats fitted in the 0.5 s cap" in res.points[0].note
    assert "D=4" in res.points[1].note
    assert res.stopped()["relative"]["after"] == 4
    fig = P.time_figure([res])
    assert any(t.marker.symbol == "x-thin" for t in fig.data if t.mode == "markers")


def test_predicted_too_slow_skips_without_compiling(monkeypatch):
    cfg = B.BenchConfig(dims=(8, 16), methods=("exact",), cap=1.0)
    prev = [B.Point("exact", 8, "ok", time_s=0.2, compile_s=0.1)]
    assert B.predict_time("exact", 16, prev) == pytest.approx(0.2 * 8)  # cubic from one point
    monkeypatch.setattr(G, "make_grad_fn", lambda *a: pytest.fail("must not compile"))
    p = B.measure_point("exact", 16, cfg, prev)
    assert p.status == "too_slow" and "cap" in p.note and p.time_s is None


def test_prediction_uses_measured_slope_when_steeper():
    prev = [B.Point("relative", 8, "ok", time_s=1.0), B.Point("relative", 16, "ok", time_s=16.0)]  # slope 4
    assert B.predict_time("relative", 32, prev) == pytest.approx(16.0 * 2 ** 4)
    assert B.predict_time("relative", 32, []) is None
    # the registry's order is the floor of the exponent; a steeper local slope counts up to MAX_EXPONENT
    flat = [B.Point("relative", 8, "ok", time_s=1.0), B.Point("relative", 16, "ok", time_s=1.0)]
    assert B.predict_time("relative", 32, flat) == pytest.approx(2.0 ** REGISTRY["relative"].order)
    steep = [B.Point("exact", 8, "ok", time_s=1.0), B.Point("exact", 16, "ok", time_s=2.0 ** 6)]
    assert B.predict_time("exact", 32, steep) == pytest.approx(2.0 ** 6 * 2.0 ** M.MAX_EXPONENT)


def test_memory_limit_marks_too_big_before_building_anything(monkeypatch):
    cfg = B.BenchConfig(dims=(8,), methods=("relative",), batch=10, mem_limit=1000)
    monkeypatch.setattr(M, "make_inputs", lambda *a: pytest.fail("must not build inputs"))
    monkeypatch.setattr(G, "make_grad_fn", lambda *a: pytest.fail("must not compile"))
    p = B.measure_point("relative", 8, cfg)
    assert p.status == "too_big" and p.mem_bytes is None
    assert "estimated before building it" in p.note and "over the 1 KB limit" in p.note


def test_compiled_plan_refines_the_estimate(monkeypatch):
    """When the analytic estimate passes (here: made to say 1 byte), XLA's plan of the compiled call is checked
    before the call runs."""
    monkeypatch.setattr(M, "point_cost", lambda *a: (1, 1e-6))
    cfg = B.BenchConfig(dims=(8,), methods=("relative",), batch=10, mem_limit=1000)
    p = B.measure_point("relative", 8, cfg)
    assert p.status == "too_big" and p.mem_bytes > 1000 and p.time_s is None
    assert "XLA's plan" in p.note and "over the 1 KB limit" in p.note


def test_guard_before_inputs_at_the_issue_sizes(monkeypatch):
    """timing?dims=32768 built ~31 GiB of inputs before its guard ran; 64 layers at D = 4096 ~16 GiB.  Now the
    guard refuses both from the shapes alone, and a run never calls make_inputs for them."""
    monkeypatch.setattr(M, "make_inputs", lambda *a: pytest.fail("must not build inputs"))
    limit = 512 * 2 ** 20
    for dims, layers in (((32768,), 2), ((4096,), 64)):
        cfg = B.BenchConfig(dims=dims, layers=layers, mem_limit=limit)
        res = B.run_benchmark(cfg)
        assert {p.status for p in res.points} <= {"too_big", "too_slow"} and res.points
        p = res.points[0]
        assert p.status == "too_big" and "GiB" in p.note and "512 MB limit" in p.note, p.note


def test_out_of_memory_and_errors_are_caught(monkeypatch):
    cfg = B.BenchConfig(dims=(4, 8), methods=("exact", "relative"), batch=10)

    def boom(method, spec):
        if method == "exact":
            raise MemoryError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 9 GiB")
        raise RuntimeError("something else broke")

    monkeypatch.setattr(G, "make_grad_fn", boom)
    res = B.run_benchmark(cfg)
    st = {(p.method, p.dim): p for p in res.points}
    assert st[("exact", 4)].status == "too_big" and "out of memory" in st[("exact", 4)].note
    assert st[("relative", 4)].status == "error" and "something else broke" in st[("relative", 4)].note
    assert st[("exact", 8)].status == st[("relative", 8)].status == "skipped"
    assert set(res.stopped()) == {"exact", "relative"}


def test_error_helpers():
    assert M.is_oom(MemoryError()) and M.is_oom(RuntimeError("RESOURCE_EXHAUSTED: nope"))
    assert not M.is_oom(RuntimeError("zoom out"))
    assert M.error_line(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert M.error_line(ValueError()) == "ValueError"
    assert len(M.error_line(RuntimeError("x" * 500))) == len("RuntimeError: ") + 200


@pytest.mark.parametrize("platform, free, want", [("cpu", 8 << 30, 4 << 30), ("cpu", None, 2 << 30),
                                                  ("gpu", 100 << 30, int(0.85 * (100 << 30)))])
def test_default_mem_limit(monkeypatch, platform, free, want):
    monkeypatch.delenv("FLOWLAB_SESSION_MEMORY_MB", raising=False)
    monkeypatch.setattr(M, "platform_name", lambda: platform)
    monkeypatch.setattr(M, "memory_available", lambda: free)
    assert B.default_mem_limit() == want
    monkeypatch.setenv("FLOWLAB_SESSION_MEMORY_MB", "300")  # lowers it, never raises it
    assert B.default_mem_limit() == min(want, 300 << 20)
