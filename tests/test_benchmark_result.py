"""flowlab.benchmark.result on synthetic runs (no measuring): slopes, speed-ups, stopped methods, the file format,
recorded runs, and the headline and captions the Timing page shows."""
import json

import numpy as np
import pytest

from flowlab import benchmark as B
from flowlab.gradients import REGISTRY


def _synthetic(meta_extra=None):
    dims = [256, 512, 1024, 2048, 4096]
    pts = []
    for d in dims:
        pts.append(B.Point("relative", d, "ok", time_s=1e-9 * d ** 2))
        pts.append(B.Point("exact", d, "ok", time_s=2e-11 * d ** 3 + 1e-3))
    return B.BenchResult({"methods": ["relative", "exact"], "fit_range": [512, 4096], **(meta_extra or {})}, pts)


def _small(dims=(4, 8), meta_extra=None):
    """A run measured only below the slope window (what a quick live run looks like)."""
    pts = [B.Point(m, d, "ok", time_s=t * d, times_s=[t * d], mem_bytes=1000 * d)
           for d in dims for m, t in (("relative", 1e-5), ("exact", 2e-5))]
    return B.BenchResult({"methods": ["relative", "exact"], **(meta_extra or {})}, pts)


# ---- views -----------------------------------------------------------------------------------------------------------
def test_slopes_on_synthetic_data():
    s = _synthetic().slopes()
    assert s["relative"]["all"] == pytest.approx(2.0) and s["relative"]["window"] == pytest.approx(2.0)
    assert 2.7 < s["exact"]["window"] < 3.0 and s["exact"]["window"] > s["exact"]["all"]
    assert s["exact"]["window_range"] == [512, 4096]
    assert np.isnan(B.fit_slope([512], [1.0]))
    assert _synthetic().slopes(fit_range=(2048, 4096))["relative"]["window"] == pytest.approx(2.0)


def test_speedups_on_synthetic_data():
    d, r = _synthetic().speedups()["relative"]
    assert list(d) == [256, 512, 1024, 2048, 4096]
    assert r[-1] == pytest.approx((2e-11 * 4096 ** 3 + 1e-3) / (1e-9 * 4096 ** 2))
    d, r = _synthetic().speedups()["exact"]
    assert np.allclose(r, 1.0)


def test_stopped_methods():
    res = _synthetic()
    res.points += [B.Point("inverse", 256, "ok", time_s=1.0, note="this point took 40 s > cap: stopped after this D"),
                   B.Point("inverse", 512, "skipped"), B.Point("exact", 8192, "too_big", note="needs 9 GiB")]
    s = res.stopped()
    assert s["exact"] == {"dim": 8192, "status": "too_big", "note": "needs 9 GiB"}
    assert s["inverse"]["after"] == 256 and "relative" not in s
    assert res.methods == ["relative", "exact", "inverse"]


# ---- file format -----------------------------------------------------------------------------------------------------
def test_round_trip_recomputes_the_summary(tmp_path):
    res = _synthetic({"date": "2026-11-23", "platform": "cpu"})
    res.points.append(B.Point("inverse", 256, "error", note="broke"))
    path = res.save(tmp_path / "r.json")
    d = json.loads(path.read_text())
    assert d["schema"] == B.SCHEMA and d["summary"]["stopped"]["inverse"]["status"] == "error"
    assert d["summary"]["slopes"]["inverse"]["all"] is None  # NaN is written as null (strict JSON)
    d["summary"] = {"forged": True}
    back = B.BenchResult.from_dict(d)
    assert back.to_dict()["summary"] == res.to_dict()["summary"]
    assert [(p.method, p.dim, p.status, p.time_s) for p in back.points] == \
           [(p.method, p.dim, p.status, p.time_s) for p in res.points]


def test_bad_files(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"step_time_ms": {}}))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a FlowLab benchmark"):
        B.BenchResult.load(tmp_path / "other.json")
    with pytest.raises(ValueError, match="not valid JSON"):
        B.BenchResult.load(tmp_path / "broken.json")
    with pytest.raises(ValueError, match="Cannot read"):
        B.BenchResult.load(tmp_path / "missing.json")
    bad = {"schema": B.SCHEMA, "meta": {}, "points": [{"method": "exact", "dim": 8, "status": "fast"}]}
    with pytest.raises(ValueError, match="Unknown point status"):
        B.BenchResult.from_dict(bad)
    with pytest.raises(ValueError, match="no positive time"):
        B.BenchResult.from_dict({"schema": B.SCHEMA, "meta": {}, "points": [{"method": "exact", "dim": 8,
                                                                              "status": "ok"}]})
    with pytest.raises(ValueError, match="needs 'method', 'dim' and 'status'"):
        B.BenchResult.from_dict({"schema": B.SCHEMA, "meta": {}, "points": [{"dim": 8}]})
    assert B.load_recorded(tmp_path) == []  # other benchmark outputs are passed over


def test_load_recorded_newest_first(tmp_path):
    old = _small(meta_extra={"date": "2026-10-01", "platform": "cpu"}).save(tmp_path / "a_old.json")
    new = _small(meta_extra={"date": "2026-11-01", "platform": "cpu"}).save(tmp_path / "b_new.json")
    assert [p for p, _ in B.load_recorded(tmp_path)] == [new, old]


def test_newest_per_platform():
    """One run per platform, the newest of each, in load_recorded's newest-first order."""

    def rec(platform, date):
        return _small(meta_extra={"platform": platform, "date": date})

    recorded = [("gpu_new", rec("gpu", "2026-11-23")), ("cpu_new", rec("cpu", "2026-11-22")),
                ("gpu_old", rec("gpu", "2026-11-01")), ("cpu_old", rec("cpu", "2026-10-01"))]
    assert B.newest_per_platform(recorded) == ["gpu_new", "cpu_new"]
    assert B.newest_per_platform(recorded[2:]) == ["gpu_old", "cpu_old"]
    assert B.newest_per_platform([]) == []


# ---- headline and captions -------------------------------------------------------------------------------------------
def test_headline_in_the_slope_window():
    speed, rel, ex = B.headline(_synthetic(), "recorded")
    r = (2e-11 * 4096 ** 3 + 1e-3) / (1e-9 * 4096 ** 2)
    assert speed == B.Metric("relative vs exact, D = 4096", f"{r:.1f}× faster",
                             "t(exact) / t(relative) at the largest D where both were measured (recorded run)")
    assert rel == B.Metric("slope of relative", "2.00",
                           "least-squares slope of log t against log D over D∈[512, 4096] (recorded run)")
    assert ex.label == "slope of exact" and 2.7 < float(ex.value) < 3.0 and "D∈[512, 4096]" in ex.help


def test_headline_below_the_window_and_without_points():
    speed, rel, ex = B.headline(_small(), "live")
    assert speed.label == "relative vs exact, D = 8" and speed.value == "2.0× faster" and "(live run)" in speed.help
    assert rel.value == "1.00" and rel.help.startswith("least-squares slope of log t against log D over the larger "
                                                       "half of the measured D: fewer than two in [512, 4096]")
    one = B.headline(_small(dims=(8,)), "live")
    assert one[1].value == "—"
    only_rel = B.BenchResult({"methods": ["relative"]}, [B.Point("relative", 8, "ok", time_s=1.0)])
    speed, rel, ex = B.headline(only_rel, "live")
    assert speed == B.Metric("relative vs exact", "—", "needs both methods measured at the same D (live run)")
    assert ex == B.Metric("slope of exact", "—", "exact was not measured (live run)")


def test_run_caption():
    meta = {"device": "CPU · AMD EPYC", "jax": "0.10.2", "date": "2026-11-23T10:15:00+0000", "batch": 100,
            "layers": 2, "threads": {"xla_threads": "all (2)"}, "load_average_start": [0.31, 0.2, 0.1],
            "note": "quiet machine"}
    assert B.run_caption(_small(meta_extra=meta)) == (
        "CPU · AMD EPYC · JAX 0.10.2 · 2026-11-23 10:15 · batch 100, 2 layers, float32 · XLA threads: all (2) · "
        "load average at start 0.31 · quiet machine")
    bare = B.run_caption(B.BenchResult({}))
    assert bare.startswith("? · JAX ? · ? · batch None") and "load average" not in bare and bare.endswith("?")


def test_stopped_caption_and_file_name():
    res = _small(meta_extra={"date": "2026-11-23T10:15:00+0000"})
    assert B.stopped_caption(res) == ""
    res.points.append(B.Point("exact", 16, "too_slow", note="predicted 9 s"))
    assert B.stopped_caption(res) == f"Stopped: {REGISTRY['exact'].label} — predicted 9 s"
    assert B.file_name(res, "csv") == "flowlab_timing_2026-11-23T101500.csv"
