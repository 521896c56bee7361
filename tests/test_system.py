"""flowlab.system: the machine description every recorded result carries and the one result writer of benchmarks/."""
import json
import os
import math

import numpy as np
import pytest

from flowlab import system


def test_write_result_json_with_stamp(tmp_path):
    path = system.write_result(tmp_path / "sub" / "r.json", {"ratio": np.float32(1.5), "bad": float("nan"),
                                                              "dims": np.array([64, 128]), 3: "three"})
    assert path == tmp_path / "sub" / "r.json"
    text = path.read_text()
    assert "NaN" not in text and text.endswith("\n")
    d = json.loads(text)
    assert d["ratio"] == 1.5 and d["bad"] is None and d["dims"] == [64, 128] and d["3"] == "three"
    rec = d["recorded"]
    assert set(rec) == {"system", "load_average", "date"}
    assert rec["system"]["platform"] == system.platform_name() and rec["system"]["jax"]
    assert "T" in rec["date"]


def test_write_result_jsonl_appends(tmp_path):
    path = tmp_path / "runs.jsonl"
    system.write_result(path, {"run": 1})
    system.write_result(path, {"run": 2, "slope": float("inf")})
    lines = path.read_text().splitlines()
    assert [json.loads(line)["run"] for line in lines] == [1, 2]
    assert json.loads(lines[1])["slope"] is None and "recorded" in json.loads(lines[0])


def test_jsonable():
    out = system.jsonable({"a": float("nan"), "b": (np.int64(3), np.float64(-np.inf)), 1: [np.float32(0.25)],
                           "c": np.array([[1.0, np.nan]]), "s": "text", "n": None})
    assert out == {"a": None, "b": [3, None], "1": [0.25], "c": [[1.0, None]], "s": "text", "n": None}
    assert type(out["b"][0]) is int and type(out["1"][0]) is float
    json.dumps(out, allow_nan=False)


def test_stamp_and_system_info():
    s = system.stamp()
    assert set(s) == {"system", "load_average", "date"}
    info = system.system_info()
    for k in ("device", "platform", "device_kind", "device_count", "cpu_model", "jax", "jaxlib", "numpy", "python",
              "os", "threads"):
        assert k in info, k
    assert info["device"].startswith(system.platform_name().upper() + " · ")
    assert system.device_label().startswith(system.platform_name().upper() + " · ")
    assert system.cpu_model()


def test_thread_settings(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    t = system.thread_settings()
    assert t["env"]["OMP_NUM_THREADS"] == "1" and set(t["env"]) <= set(system.THREAD_VARS)
    assert t["xla_threads"] == "single-threaded Eigen (XLA_FLAGS)" and t["cpu_count"] >= 1
    monkeypatch.delenv("XLA_FLAGS")
    assert system.thread_settings()["xla_threads"].startswith("all (")


def test_load_and_memory():
    load = system.load_average()
    assert load is None or (len(load) == 3 and all(v >= 0 for v in load))
    free = system.memory_available()
    assert free is None or free > 0
    peak = system.device_peak_bytes()
    assert peak is None or peak >= 0
    if system.platform_name() == "cpu":
        assert peak is None  # the host has no device memory statistics


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.float32("nan")])
def test_non_finite_becomes_none(value):
    assert system.jsonable(value) is None and not math.isnan(system.jsonable(1.0))


def test_compile_cache_refuses_an_unwritable_folder_in_one_sentence(tmp_path, monkeypatch):
    import jax

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    before = jax.config.jax_compilation_cache_dir
    msg = system.enable_compile_cache(blocker / "cache")  # a folder below a file cannot exist
    assert msg is not None and msg.startswith("No compilation cache") and msg.endswith(".") and "\n" not in msg
    assert jax.config.jax_compilation_cache_dir == before  # nothing was switched on
    folder = tmp_path / "cache"
    try:
        assert system.enable_compile_cache(folder, max_bytes=1 << 20) is None
        assert jax.config.jax_compilation_cache_dir == str(folder)
        assert jax.config.jax_compilation_cache_max_size == 1 << 20
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
        jax.config.update("jax_compilation_cache_max_size", -1)


def test_usable_cpus_is_capped_by_a_container_quota(tmp_path):
    import os
    n = len(os.sched_getaffinity(0))
    assert system.usable_cpus(tmp_path) == n  # no cgroup files: the affinity
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert system.usable_cpus(tmp_path) == n
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 cores -> 2 (or fewer when the affinity is smaller)
    assert system.usable_cpus(tmp_path) == min(n, 2)
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")  # cgroup v1, half a core -> 1
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert system.usable_cpus(tmp_path) == 1


def test_compile_cache_probe_leaves_nothing_behind(tmp_path):
    import jax
    before = jax.config.jax_compilation_cache_dir
    try:
        assert system.enable_compile_cache(tmp_path / "cache") is None
        assert list((tmp_path / "cache").iterdir()) == []
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_read_results_round_trips_and_skips_what_it_cannot_read(tmp_path):
    p = tmp_path / "r.jsonl"
    system.write_result(p, {"a": 1})
    system.write_result(p, {"a": 2})
    with open(p, "a") as f:
        f.write("not json\n[1, 2]\n")
    assert [r["a"] for r in system.read_results(p)] == [1, 2]
    assert system.read_results(tmp_path / "missing.jsonl") == []
    system.write_result(tmp_path / "one.json", {"b": 3})
    assert system.read_results(tmp_path / "one.json")[0]["b"] == 3
    assert system.read_results(p, max_bytes=10) == []


def test_proc_bytes_reads_kb_lines_and_rss_is_this_process(tmp_path):
    f = tmp_path / "status"
    f.write_text("Name:\tpython\nVmRSS:\t  2048 kB\nVmHWM:\t4096 kB\n")
    assert system.proc_bytes(str(f), "VmRSS") == 2048 * 1024 and system.proc_bytes(str(f), "VmHWM") == 4096 * 1024
    assert system.proc_bytes(str(f), "VmSwap") is None and system.proc_bytes(str(tmp_path / "none"), "VmRSS") is None
    if os.path.exists("/proc/self/statm"):  # the same resident size the kernel reports in pages
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        assert abs(system.rss_bytes() - pages) < 64 << 20 and system.rss_bytes(os.getpid()) > 0
