"""flowlab.benchmark.runner on tiny D: structure of a run, its metadata and files, step-by-step progress, cancel, the
worker thread and its progress line.  Everything compiles at D in {4, 8} only, so the file runs in seconds."""
import ast
import csv
import importlib
import inspect
import io
import json
import pkgutil
import time

import numpy as np
import pytest

import flowlab.benchmark
from flowlab import benchmark as B
from flowlab.cli import bench
from flowlab.gradients import REGISTRY
from flowlab.plots import timing as P

TINY = dict(dims=(4, 8), methods=("relative", "exact"), repeats=3, batch=10, cap=20.0)


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
    assert m["cap_s"] == 20.0 and m["completed_points"] == m["planned_points"] == 4


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


def test_csv_table(tiny_run, tmp_path):
    res, _ = tiny_run
    rows = list(csv.DictReader(io.StringIO(res.to_csv())))
    assert len(rows) == 4 and {r["method"] for r in rows} == {"relative", "exact"}
    ex = next(r for r in rows if r["method"] == "exact" and r["dim"] == "8")
    assert float(ex["speedup_vs_exact"]) == pytest.approx(1.0) and float(ex["time_ms"]) > 0
    assert ex["device"] == res.meta["device"] and ex["jax"] == res.meta["jax"]
    assert res.save(tmp_path / "t.csv").read_text() == res.to_csv()


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


def test_on_point_false_cancels():
    res = B.run_benchmark(B.BenchConfig(**TINY), on_point=lambda p, run: False)
    assert len(res.points) == 1 and res.meta["cancelled"] is True


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


def test_progress_line():
    res = B.BenchResult({"duration_s": 12.4})
    snap = dict(result=res, done=1, total=4, current=(8, "exact"), finished=False, cancelled=False, waiting=False)
    assert B.progress(snap) == (0.25, f"point 2 of 4: measuring {REGISTRY['exact'].label} at D = 8…")
    assert B.progress({**snap, "waiting": True})[1] == "point 2 of 4: waiting for another session's benchmark…"
    assert B.progress({**snap, "current": None, "done": 4})[1] == "point 4 of 4: finishing…"
    assert B.progress({**snap, "finished": True, "done": 4}) == (1.0, "live run finished: 4 of 4 points in 12 s")
    assert B.progress({**snap, "finished": True, "cancelled": True})[1].startswith("live run cancelled: 1 of 4")
    assert B.progress({**snap, "total": 0, "done": 0, "finished": True})[0] == 0.0


# ---- the package -----------------------------------------------------------------------------------------------------
def test_benchmark_package_does_not_import_streamlit():
    names = sorted(m.name for m in pkgutil.iter_modules(flowlab.benchmark.__path__))
    assert names == ["config", "measure", "result", "runner", "stability"]  # a new module is checked here too
    mods = [B, P, bench] + [importlib.import_module(f"flowlab.benchmark.{n}") for n in names]
    for mod in mods:
        tree = ast.parse(inspect.getsource(mod))
        names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        froms = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any("streamlit" in (x or "") for x in names | froms), mod.__name__
        private = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
                   if a.name.startswith("_") and a.name != "__future__"}
        assert not private, (mod.__name__, private)
        nested = [n for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not nested, mod.__name__  # no function-level imports


def test_public_names_of_the_old_module():
    old = ["BenchConfig", "BenchResult", "BenchmarkRun", "BenchmarkWorker", "Point", "default_dims", "fit_slope",
           "iter_benchmark", "load_recorded", "measure_point", "newest_per_platform", "parse_dims", "parse_methods",
           "predict_time", "run_benchmark", "METHODS"]
    for name in old + list(B.__all__):
        assert hasattr(B, name), name


# ---- budget: the guard before inputs, the session, the run's time (issue 16) -----------------------------------------
from flowlab import budget as Bu  # noqa: E402

SERVER = Bu.session_budget({}, available=64 * Bu.GiB, platform="cpu")


def test_worker_stops_when_its_session_ends():
    gone = B.BenchmarkWorker(B.BenchConfig(**TINY), alive=lambda: False).start()
    gone.thread.join(30)
    s = gone.snapshot()
    assert s["finished"] and s["cancelled"] and s["done"] == 0
    holder = {}
    w = B.BenchmarkWorker(B.BenchConfig(**TINY), alive=lambda: not holder["w"].run.result.points)
    holder["w"] = w
    w.start().thread.join(60)
    s = w.snapshot()
    assert s["finished"] and s["cancelled"] and s["done"] == 1 and s["error"] is None


def test_a_run_skips_what_is_left_once_its_time_is_used():
    run = B.BenchmarkRun(B.BenchConfig(**TINY), time_limit=0.0)
    while not run.finished:
        run.step()
    assert [p.status for p in run.result.points] == ["ok", "skipped", "skipped", "skipped"]
    assert all("measuring time" in p.note for p in run.result.points[1:])
    assert run.result.meta["time_limit_s"] == 0.0


def test_grid_estimate_and_refusal():
    quick = B.BenchConfig(dims=(32, 64, 128, 256, 512), methods=("relative", "exact"))
    est = B.grid_estimate(quick, SERVER.memory)
    assert est.runs == 10 and est.too_big == est.too_slow == 0 and 0 < est.seconds < SERVER.seconds
    assert B.grid_refusal(quick, SERVER) is None
    for dims, layers, size in (((32768,), 2, "29 GiB"), ((4096,), 64, "15 GiB")):
        cfg = B.BenchConfig(dims=dims, layers=layers)
        text = B.grid_refusal(cfg, SERVER)
        assert text.startswith("Nothing in this grid can run: its smallest point (relative gradient at D = ")
        assert f"needs about {size}; this server allows 512 MB per session: use D up to " in text
        assert text.endswith(".") and text.count(". ") == 0
        d = int(text.rsplit("use D up to ", 1)[1].rstrip(".").replace(",", ""))
        assert B.guard("relative", d, cfg, (), SERVER.memory) is None  # the suggestion fits
        assert B.guard("relative", d * 2, cfg, (), SERVER.memory).status == "too_big"
    slow = Bu.Budget(SERVER.memory, 1.0, SERVER.memory_note, SERVER.time_note)
    text = B.grid_refusal(quick, slow)
    assert text.startswith("This run needs up to about") and "of compute per job" in text


def test_a_mixed_grid_runs_what_fits(monkeypatch):
    """A grid whose large D do not fit runs its small D; the large ones are marked from their sizes, and no input
    is built for them."""
    from flowlab.benchmark import measure as M
    from flowlab.benchmark import runner as R

    built = []
    real = M.make_inputs
    monkeypatch.setattr(R, "make_inputs", lambda d, c: built.append(d) or real(d, c))
    cfg = B.BenchConfig(dims=(8, 32768), methods=("relative",), batch=10, repeats=1)
    res = B.run_benchmark(cfg, mem_limit=SERVER.memory)
    assert [(p.dim, p.status) for p in res.points] == [(8, "ok"), (32768, "too_big")] and built == [8]
