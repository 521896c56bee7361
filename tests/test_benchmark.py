"""The timing harness on tiny D: structure of a run, the time and memory guards, slopes, JSON/CSV round trip, the
worker thread, the CLI and input validation.  Everything compiles at D in {4, 8} only, so the file runs in seconds."""
import csv
import io
import json
import time

import numpy as np
import pytest

from flowlab import benchmark as B
from flowlab.plots import timing as P

TINY = dict(dims=(4, 8), methods=("relative", "exact"), repeats=3, batch=10, cap_s=20.0)


@pytest.fixture(scope="module")
def tiny_run():
    seen = []
    res = B.run_benchmark(B.BenchConfig(**TINY), on_point=lambda p, run: seen.append((p.dim, p.method, run.index)))
    return res, seen


# ---- a run -----------------------------------------------------------------------------------------------------------
def test_run_structure_and_order(tiny_run):
    res, seen = tiny_run
    # D outer, methods inner (canonical order: relative before exact), callback after every point with the progress
    assert seen == [(4, "relative", 1), (4, "exact", 2), (8, "relative", 3), (8, "exact", 4)]
    assert [p.status for p in res.points] == ["ok"] * 4
    for p in res.points:
        assert 1 <= len(p.times_s) <= 3
        assert p.time_s == pytest.approx(float(np.median(p.times_s)))
        assert p.time_s > 0 and p.compile_s > 0 and p.first_call_s > 0
        assert p.mem_bytes and p.mem_bytes > 0  # CPU: compiled memory analysis
    m = res.meta
    for k in ("device", "platform", "jax", "jaxlib", "date", "threads", "load_average_start", "load_average_end",
              "duration_s", "batch", "layers", "dims", "methods", "cap_s", "mem_limit_bytes"):
        assert k in m, k
    assert m["batch"] == 10 and m["layers"] == 2 and m["dims"] == [4, 8] and m["cancelled"] is False
    assert m["threads"]["cpu_count"] >= 1 and "XLA_FLAGS" in m["threads"]


def test_memory_grows_with_d(tiny_run):
    res, _ = tiny_run
    for meth in ("relative", "exact"):
        d, b = res.memory_series(meth)
        assert list(d) == [4, 8] and b[1] > b[0]


def test_json_round_trip(tiny_run, tmp_path):
    res, _ = tiny_run
    path = res.save(tmp_path / "run.json")
    back = B.BenchResult.load(path)
    assert back.meta == json.loads(path.read_text())["meta"]
    assert [(p.method, p.dim, p.status, p.time_s, p.times_s, p.mem_bytes) for p in back.points] == \
           [(p.method, p.dim, p.status, p.time_s, p.times_s, p.mem_bytes) for p in res.points]
    d = json.loads(path.read_text())
    assert d["schema"] == B.SCHEMA and "slopes" in d["summary"] and "speedup_vs_exact" in d["summary"]
    assert B.load_recorded(tmp_path)[0][0] == path


def test_newest_per_platform(tiny_run):
    """One run per platform, the newest of each, in load_recorded's newest-first order."""
    res, _ = tiny_run

    def rec(platform, date):
        r = B.BenchResult.from_dict(json.loads(res.to_json()))
        r.meta.update(platform=platform, date=date)
        return r

    recorded = [("gpu_new", rec("gpu", "2026-11-23")), ("cpu_new", rec("cpu", "2026-11-22")),
                ("gpu_old", rec("gpu", "2026-11-01")), ("cpu_old", rec("cpu", "2026-10-01"))]
    assert B.newest_per_platform(recorded) == ["gpu_new", "cpu_new"]
    assert B.newest_per_platform(recorded[2:]) == ["gpu_old", "cpu_old"]
    assert B.newest_per_platform([]) == []


def test_csv_table(tiny_run, tmp_path):
    res, _ = tiny_run
    rows = list(csv.DictReader(io.StringIO(res.to_csv())))
    assert len(rows) == 4 and {r["method"] for r in rows} == {"relative", "exact"}
    ex = next(r for r in rows if r["method"] == "exact" and r["dim"] == "8")
    assert float(ex["speedup_vs_exact"]) == pytest.approx(1.0) and float(ex["time_ms"]) > 0
    assert ex["device"] == res.meta["device"] and ex["jax"] == res.meta["jax"]
    assert res.save(tmp_path / "t.csv").read_text() == res.to_csv()


def test_figures_and_table(tiny_run):
    res, _ = tiny_run
    fig = P.time_figure([res, res])
    names = [t.name for t in fig.data]
    assert any("∝ D²" in n for n in names) and any("∝ D³" in n for n in names)
    assert sum(1 for t in fig.data if t.name and t.name.startswith("relative")) == 2  # focus run + overlay
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert len(P.speedup_figure([res]).data) == 1  # relative vs exact (exact itself is not drawn)
    assert len(P.memory_figure([res]).data) == 2
    assert len(P.results_table(res)) == 4
    empty = P.time_figure([])
    assert not empty.data and "Run" in empty.layout.annotations[0].text


# ---- guards ----------------------------------------------------------------------------------------------------------
def test_cap_stops_a_method_and_skips_larger_d():
    # a 1 ms cap: the first point still runs (one timed call) but takes longer, so the method stops after it
    res = B.run_benchmark(B.BenchConfig(dims=(4, 8, 16), methods=("relative",), repeats=5, batch=10, cap_s=1e-3))
    assert [p.status for p in res.points] == ["ok", "skipped", "skipped"]
    assert len(res.points[0].times_s) == 1 and "stopped after this D" in res.points[0].note
    assert "D=4" in res.points[1].note
    assert res.stopped()["relative"]["after"] == 4
    fig = P.time_figure([res])
    assert any(t.marker.symbol == "x-thin" for t in fig.data if t.mode == "markers")


def test_predicted_too_slow_skips_without_compiling(monkeypatch):
    cfg = B.BenchConfig(dims=(8, 16), methods=("exact",), cap_s=1.0)
    prev = [B.Point("exact", 8, "ok", time_s=0.2, compile_s=0.1)]
    assert B.predict_time("exact", 16, prev) == pytest.approx(0.2 * 8)  # cubic from one point
    monkeypatch.setattr("flowlab.gradients.make_grad_fn", lambda *a: pytest.fail("must not compile"))
    p = B.measure_point("exact", 16, cfg, prev)
    assert p.status == "too_slow" and "cap" in p.note and p.time_s is None


def test_prediction_uses_measured_slope_when_steeper():
    prev = [B.Point("relative", 8, "ok", time_s=1.0), B.Point("relative", 16, "ok", time_s=16.0)]  # slope 4
    assert B.predict_time("relative", 32, prev) == pytest.approx(16.0 * 2 ** 4)
    assert B.predict_time("relative", 32, []) is None


def test_memory_limit_marks_too_big():
    cfg = B.BenchConfig(dims=(8,), methods=("relative",), batch=10, mem_limit=1)
    p = B.measure_point("relative", 8, cfg)
    assert p.status == "too_big" and p.mem_bytes > 1 and "GiB" in p.note


def test_out_of_memory_and_errors_are_caught(monkeypatch):
    import flowlab.gradients as G

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


# ---- slopes and speed-ups on synthetic data --------------------------------------------------------------------------
def _synthetic(meta_extra=None):
    dims = [256, 512, 1024, 2048, 4096]
    pts = []
    for d in dims:
        pts.append(B.Point("relative", d, "ok", time_s=1e-9 * d ** 2))
        pts.append(B.Point("exact", d, "ok", time_s=2e-11 * d ** 3 + 1e-3))
    return B.BenchResult({"methods": ["relative", "exact"], "fit_range": [512, 4096], **(meta_extra or {})}, pts)


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


# ---- progress, cancel, worker ----------------------------------------------------------------------------------------
def test_step_by_step_and_cancel():
    run = B.BenchmarkRun(B.BenchConfig(**TINY))
    assert run.total == 4 and run.next_task == (4, "relative")
    p = run.step()
    assert p.status == "ok" and run.index == 1 and not run.finished
    run.cancel()
    assert run.finished and run.step() is None
    assert run.result.meta["cancelled"] is True and run.result.meta["completed_points"] == 1


def test_generator_closes_as_cancel():
    gen = B.iter_benchmark(B.BenchConfig(**TINY))
    point, run = next(gen)
    gen.close()
    assert run.cancelled and len(run.result.points) == 1 and point.method == "relative"


def test_worker_thread_runs_and_cancels():
    w = B.BenchmarkWorker(B.BenchConfig(**TINY)).start()
    deadline = time.time() + 60
    while w.alive and time.time() < deadline:
        snap = w.snapshot()
        assert 0 <= snap["done"] <= snap["total"] == 4
        time.sleep(0.05)
    snap = w.snapshot()
    assert snap["finished"] and snap["done"] == 4 and not snap["cancelled"] and snap["error"] is None
    w2 = B.BenchmarkWorker(B.BenchConfig(**TINY))
    w2.cancel()
    w2.start().thread.join(30)
    s2 = w2.snapshot()
    assert s2["finished"] and s2["cancelled"] and s2["done"] == 0


# ---- input validation ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims, msg", [("", "at least one"), ("64, abc", "not a whole number"), ("1", "out of range"),
                                       ("64, 12.5", "not a whole number"), ([70000], "out of range")])
def test_bad_dims(dims, msg):
    with pytest.raises(ValueError, match=msg):
        B.parse_dims(dims)


def test_parse_and_defaults():
    assert B.parse_dims("256, 64;128 64") == (64, 128, 256)
    assert B.parse_methods("exact, relative") == ("relative", "exact")
    assert B.default_dims() == (64, 88, 128, 184, 256, 360, 512, 728, 1024, 1448, 2048, 2896, 4096)
    assert B.default_dims(512, 32, 1) == (32, 64, 128, 256, 512)
    with pytest.raises(ValueError, match="smallest D"):
        B.default_dims(32, 64)


@pytest.mark.parametrize("kw, msg", [(dict(methods=("fast",)), "Unknown gradient method"),
                                     (dict(methods=()), "at least one"), (dict(batch=0), "batch must lie"),
                                     (dict(repeats="x"), "repeats must be a number"), (dict(cap_s=0), "cap_s"),
                                     (dict(fit_range=(10, 5)), "window"), (dict(mem_limit=-1), "memory limit")])
def test_bad_config(kw, msg):
    with pytest.raises(ValueError, match=msg):
        B.BenchConfig(**{"dims": (8,), **kw})


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
    assert B.load_recorded(tmp_path) == []  # other benchmark outputs are passed over


# ---- CLI -------------------------------------------------------------------------------------------------------------
def test_cli_smoke(tmp_path, capsys):
    out, csv_out = tmp_path / "r.json", tmp_path / "r.csv"
    rc = B.cli_main(["--dims", "4,8", "--methods", "relative,exact", "--repeats", "2", "--batch", "10",
                     "--out", str(out), "--csv", str(csv_out), "--note", "test"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "slope" in text and "faster than exact" in text and f"wrote {out}" in text
    res = B.BenchResult.load(out)
    assert len(res.points) == 4 and res.meta["note"] == "test" and csv_out.read_text().startswith("method,dim")


def test_cli_via_main_module_bad_input(capsys):
    from flowlab.__main__ import main

    assert main(["bench", "--dims", "64,abc"]) == 2
    assert "error: Dimension 'abc' is not a whole number" in capsys.readouterr().err
    assert main(["bench", "--dims", "8", "--methods", "fast"]) == 2
    assert "Unknown gradient method" in capsys.readouterr().err
    assert main(["bench", "--dims", "8", "--out", "/no/such/folder/x.json"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_benchmark_module_does_not_import_streamlit():
    import ast
    import inspect

    for mod in (B, P):
        tree = ast.parse(inspect.getsource(mod))
        names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any("streamlit" in (x or "") for x in names | mods)
