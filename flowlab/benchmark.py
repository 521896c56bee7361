"""Cost of one gradient evaluation against the dimension D (Gresele et al. 2020, Fig. 1 left / App. H.1; Keller et al.
2021, Fig. 4), measured on this machine.

One *point* is (method, D): a fully connected flow with ``layers`` layers, a batch of ``batch`` standard-normal rows and
one call of the method's gradient function ``(params, batch, hyper) -> (grads, metrics)`` from ``flowlab.gradients``
(forward + backward).  The function is compiled ahead of time (compile time recorded, never counted), called once to
warm up, then timed ``repeats`` times with ``jax.block_until_ready``; the point's time is the median.

Guards, so that a slow or huge method is stopped and marked instead of hanging or crashing the run:
* time: before a point, its cost is predicted from the method's previous point (exponent = the larger of the method's
  theoretical order and the locally measured slope); if the prediction exceeds the per-point cap ``cap_s``, the point
  is marked ``too_slow`` and the method stops.  Repeats end early once the cap is used up; a point that still ran past
  the cap stops its method after it.
* memory: the compiled executable's memory analysis (arguments + outputs + temporaries) is compared with a limit
  (half the available RAM on CPU, 85 % of the free device memory on GPU) before anything runs: ``too_big``.  A
  run-time out-of-memory error is caught and marked ``too_big`` as well.
Larger D of a stopped method are recorded as ``skipped``.

Interfaces: ``BenchmarkRun`` (``step()`` runs one point; a UI can step between reruns), ``iter_benchmark`` (a
generator), ``run_benchmark`` (with a progress callback that can cancel), ``BenchmarkWorker`` (a background thread
whose snapshot a page polls), results as ``BenchResult`` with JSON/CSV round trip, and ``cli_main`` for
``python -m flowlab bench``.  Pure JAX/numpy: never imports streamlit, never changes global JAX configuration.
"""
from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .gradients import METHODS, check_method
from .lessons import _THREAD_VARS, loglog_slope

SCHEMA = "flowlab.benchmark/1"
# Display/run order: the cheap methods first, so a cancelled run still has the interesting comparison.
DEFAULT_METHODS = ("relative", "self_normalizing", "exact", "inverse", "autodiff_jacobian")
ORDER = {"exact": 3, "inverse": 3, "relative": 2, "self_normalizing": 2, "autodiff_jacobian": 3}
STATUSES = ("ok", "too_slow", "too_big", "error", "skipped")
STATUS_LABELS = {"ok": "measured", "too_slow": "stopped: too slow", "too_big": "stopped: too big for memory",
                 "error": "stopped: error", "skipped": "skipped (method stopped at a smaller D)"}
FIT_RANGE = (512, 4096)
MIN_DIM, MAX_DIM = 2, 65536
LIMITS = {"batch": (1, 100_000), "layers": (1, 64), "repeats": (1, 100), "cap_s": (1e-3, 3600.0)}
MIN_SAMPLE_S = 2e-3  # very fast calls are looped until one timed sample lasts at least this long


# =====================================================================================================================
# configuration and input parsing
# =====================================================================================================================
def default_dims(max_dim: int = 4096, min_dim: int = 64, per_octave: int = 2) -> tuple[int, ...]:
    """Log-spaced grid from ``min_dim`` to ``max_dim`` with ``per_octave`` points per doubling, rounded to multiples
    of 8 above 64 (64, 88, 128, 184, 256, 360, 512, 728, 1024, 1448, 2048, 2896, 4096 by default)."""
    if not (MIN_DIM <= int(min_dim) <= int(max_dim) <= MAX_DIM):
        raise ValueError(f"The grid needs {MIN_DIM} <= smallest D <= largest D <= {MAX_DIM}, got {min_dim} and "
                         f"{max_dim}.")
    if int(per_octave) < 1:
        raise ValueError(f"Use at least one point per doubling of D, got {per_octave}.")
    n = int(round(math.log2(max_dim / min_dim) * per_octave))
    raw = [min_dim * 2.0 ** (k / per_octave) for k in range(n + 1)] + [float(max_dim)]
    out = sorted({int(max_dim) if abs(v - max_dim) < 1e-6 else (int(round(v / 8) * 8) if v > 64 else int(round(v)))
                  for v in raw if v <= max_dim + 1e-6})
    return tuple(out)


def default_max_dim(platform_name: str | None = None) -> int:
    """4096 on CPU; on an accelerator the memory guard decides where each method stops."""
    return 4096 if (platform_name or _platform()) == "cpu" else 16384


def parse_dims(text) -> tuple[int, ...]:
    """'64, 128 256' or [64, 128] -> (64, 128, 256), sorted and de-duplicated; a ValueError says what is wrong."""
    if isinstance(text, str):
        parts = [p for p in text.replace(",", " ").replace(";", " ").split() if p]
    else:
        parts = list(text)
    if not parts:
        raise ValueError("Give at least one dimension D, for example 64, 128, 256.")
    dims = []
    for p in parts:
        try:
            v = float(p)
        except (TypeError, ValueError):
            raise ValueError(f"Dimension {p!r} is not a whole number; write the grid like 64, 128, 256.") from None
        if not math.isfinite(v) or v != int(v):
            raise ValueError(f"Dimension {p!r} is not a whole number; write the grid like 64, 128, 256.")
        if not MIN_DIM <= int(v) <= MAX_DIM:
            raise ValueError(f"Dimension {int(v)} is out of range: use {MIN_DIM} <= D <= {MAX_DIM}.")
        dims.append(int(v))
    return tuple(sorted(set(dims)))


def parse_methods(text) -> tuple[str, ...]:
    """'exact,relative' or a list -> validated tuple in the canonical run order."""
    parts = [p.strip() for p in (text.replace(" ", ",").split(",") if isinstance(text, str) else text)]
    parts = [p for p in parts if p]
    if not parts:
        raise ValueError(f"Choose at least one gradient method: {', '.join(DEFAULT_METHODS)}.")
    for p in parts:
        check_method(p)
    return tuple(m for m in DEFAULT_METHODS if m in parts)


def _check_range(name: str, value, cast=int):
    lo, hi = LIMITS[name]
    try:
        v = cast(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}.") from None
    if not (lo <= v <= hi) or (isinstance(v, float) and not math.isfinite(v)):
        raise ValueError(f"{name} must lie between {lo:g} and {hi:g}, got {value!r}.")
    return v


@dataclass(frozen=True)
class BenchConfig:
    """What to measure.  ``cap_s`` is the per-point time budget (compile + warm-up + timed calls), ``mem_limit``
    the largest compiled footprint in bytes allowed to run (None: automatic), ``fit_range`` the D-window of the
    headline slope fit."""

    dims: tuple = field(default_factory=default_dims)
    methods: tuple = DEFAULT_METHODS
    batch: int = 100
    layers: int = 2
    repeats: int = 5
    cap_s: float = 30.0
    mem_limit: int | None = None
    fit_range: tuple = FIT_RANGE
    seed: int = 0
    lam: float = 1.0

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "dims", parse_dims(self.dims))
        set_(self, "methods", parse_methods(self.methods))
        set_(self, "batch", _check_range("batch", self.batch))
        set_(self, "layers", _check_range("layers", self.layers))
        set_(self, "repeats", _check_range("repeats", self.repeats))
        set_(self, "cap_s", _check_range("cap_s", self.cap_s, float))
        if self.mem_limit is not None and not int(self.mem_limit) > 0:
            raise ValueError(f"The memory limit must be a positive number of bytes, got {self.mem_limit}.")
        lo, hi = (float(v) for v in self.fit_range)
        if not 0 < lo < hi:
            raise ValueError(f"The slope-fit window needs 0 < low < high, got {self.fit_range}.")
        set_(self, "fit_range", (lo, hi))


# =====================================================================================================================
# results
# =====================================================================================================================
@dataclass
class Point:
    """One (method, D) measurement.  ``time_s`` is the median of ``times_s`` (seconds per gradient evaluation)."""

    method: str
    dim: int
    status: str
    time_s: float | None = None
    times_s: list = field(default_factory=list)
    calls_per_sample: int = 1
    compile_s: float | None = None
    first_call_s: float | None = None
    mem_bytes: int | None = None  # compiled footprint: arguments + outputs + temporaries - aliased
    mem_detail: dict | None = None
    device_peak_bytes: int | None = None  # accelerator only: process-wide peak so far (memory_stats)
    wall_s: float | None = None
    note: str = ""

    @staticmethod
    def from_dict(d: dict) -> "Point":
        if not isinstance(d, dict):
            raise ValueError("Every entry of 'points' must be an object.")
        try:
            p = Point(method=str(d["method"]), dim=int(d["dim"]), status=str(d["status"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError("A point needs 'method', 'dim' and 'status'.") from None
        if p.status not in STATUSES:
            raise ValueError(f"Unknown point status {p.status!r}; expected one of {', '.join(STATUSES)}.")
        for k in ("time_s", "compile_s", "first_call_s", "wall_s"):
            v = d.get(k)
            setattr(p, k, None if v is None else float(v))
        for k in ("mem_bytes", "device_peak_bytes"):
            v = d.get(k)
            setattr(p, k, None if v is None else int(v))
        p.times_s = [float(t) for t in d.get("times_s") or []]
        p.calls_per_sample = int(d.get("calls_per_sample", 1))
        p.mem_detail = d.get("mem_detail")
        p.note = str(d.get("note", ""))
        if p.status == "ok" and (p.time_s is None or not p.time_s > 0):
            raise ValueError(f"The measured point {p.method} at D={p.dim} has no positive time.")
        return p


@dataclass
class BenchResult:
    """A run: metadata (device, versions, date, threads, load, settings) and its points."""

    meta: dict
    points: list = field(default_factory=list)

    # ---- views -----------------------------------------------------------------------------------------------------
    @property
    def methods(self) -> list:
        seen = list(self.meta.get("methods") or [])
        for p in self.points:
            if p.method not in seen:
                seen.append(p.method)
        return seen

    @property
    def label(self) -> str:
        m = self.meta
        return m.get("label") or f"{m.get('device', '?')} · {m.get('date', '?')[:10]}"

    def ok(self, method: str) -> list:
        return sorted((p for p in self.points if p.method == method and p.status == "ok"), key=lambda p: p.dim)

    def series(self, method: str):
        """(dims, seconds) of the measured points of ``method``, ascending D."""
        pts = self.ok(method)
        return np.array([p.dim for p in pts], dtype=float), np.array([p.time_s for p in pts], dtype=float)

    def memory_series(self, method: str):
        pts = [p for p in self.ok(method) if p.mem_bytes]
        return np.array([p.dim for p in pts], dtype=float), np.array([p.mem_bytes for p in pts], dtype=float)

    def slopes(self, fit_range=None) -> dict:
        """Per method: ``all`` (every measured D), ``window`` (D inside the fit window, default the run's) and
        ``upper`` (the larger half of the measured D), each NaN when fewer than two points qualify."""
        lo, hi = fit_range or self.meta.get("fit_range") or FIT_RANGE
        out = {}
        for m in self.methods:
            d, t = self.series(m)
            half = (len(d) + 1) // 2
            inw = (d >= lo) & (d <= hi)
            out[m] = {"all": fit_slope(d, t), "window": fit_slope(d[inw], t[inw]),
                      "upper": fit_slope(d[-max(half, 2):], t[-max(half, 2):]), "window_range": [lo, hi]}
        return out

    def speedups(self, reference: str = "exact") -> dict:
        """Per method: (dims, t_reference / t_method) over the D where both were measured."""
        rd, rt = self.series(reference)
        ref = dict(zip(rd.tolist(), rt.tolist()))
        out = {}
        for m in self.methods:
            d, t = self.series(m)
            keep = [i for i, v in enumerate(d.tolist()) if v in ref]
            out[m] = (d[keep], np.array([ref[d[i]] / t[i] for i in keep], dtype=float))
        return out

    def stopped(self) -> dict:
        """Per stopped method: the first D that was not measured, its status and the reason."""
        out = {}
        for m in self.methods:
            pts = sorted((p for p in self.points if p.method == m and p.status in ("too_slow", "too_big", "error")),
                         key=lambda p: p.dim)
            if pts:
                out[m] = {"dim": pts[0].dim, "status": pts[0].status, "note": pts[0].note}
            else:
                ok = self.ok(m)
                if ok and "stopped" in ok[-1].note:
                    out[m] = {"dim": None, "status": "too_slow", "note": ok[-1].note, "after": ok[-1].dim}
        return out

    def summary(self) -> dict:
        sp = self.speedups()
        return {"slopes": self.slopes(),
                "speedup_vs_exact": {m: {str(int(d)): r for d, r in zip(*v)} for m, v in sp.items() if len(v[0])},
                "stopped": self.stopped()}

    # ---- serialisation ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "meta": self.meta, "points": [asdict(p) for p in self.points],
                "summary": _jsonable(self.summary())}

    def to_json(self) -> str:
        return json.dumps(_jsonable(self.to_dict()), indent=1, allow_nan=False)

    @staticmethod
    def from_dict(d) -> "BenchResult":
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise ValueError(f"This is not a FlowLab benchmark result (expected \"schema\": \"{SCHEMA}\").")
        meta, points = d.get("meta"), d.get("points")
        if not isinstance(meta, dict) or not isinstance(points, list):
            raise ValueError("A benchmark result needs a 'meta' object and a 'points' list.")
        return BenchResult(dict(meta), [Point.from_dict(p) for p in points])  # the summary is recomputed, not trusted

    @staticmethod
    def from_json(text: str) -> "BenchResult":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"The benchmark file is not valid JSON ({e.msg}, line {e.lineno}).") from None
        return BenchResult.from_dict(d)

    CSV_FIELDS = ("method", "dim", "status", "time_ms", "speedup_vs_exact", "repeats", "compile_s", "mem_mb",
                  "note", "device", "jax", "date", "batch", "layers")

    def to_csv(self) -> str:
        sp = {m: dict(zip(d.tolist(), r.tolist())) for m, (d, r) in self.speedups().items()}
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.CSV_FIELDS, lineterminator="\n")
        w.writeheader()
        for p in sorted(self.points, key=lambda p: (self.methods.index(p.method), p.dim)):
            r = sp.get(p.method, {}).get(float(p.dim))
            w.writerow({"method": p.method, "dim": p.dim, "status": p.status,
                        "time_ms": "" if p.time_s is None else f"{p.time_s * 1e3:.6g}",
                        "speedup_vs_exact": "" if r is None else f"{r:.4g}", "repeats": len(p.times_s) or "",
                        "compile_s": "" if p.compile_s is None else f"{p.compile_s:.3g}",
                        "mem_mb": "" if p.mem_bytes is None else f"{p.mem_bytes / 2 ** 20:.4g}", "note": p.note,
                        "device": self.meta.get("device", ""), "jax": self.meta.get("jax", ""),
                        "date": self.meta.get("date", ""), "batch": self.meta.get("batch", ""),
                        "layers": self.meta.get("layers", "")})
        return buf.getvalue()

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_csv() if path.suffix.lower() == ".csv" else self.to_json())
        return path

    @staticmethod
    def load(path) -> "BenchResult":
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ValueError(f"Cannot read the benchmark file {path}: {e.strerror}.") from None
        return BenchResult.from_json(text)


def fit_slope(dims, times) -> float:
    """Least-squares log-log slope (t ∝ D^slope); NaN with fewer than two distinct D."""
    dims, times = np.asarray(dims, float), np.asarray(times, float)
    if dims.size < 2 or np.unique(dims).size < 2:
        return float("nan")
    return loglog_slope(dims, times)


def load_recorded(folder) -> list:
    """Every FlowLab benchmark result in ``folder`` (*.json, newest first) as (path, BenchResult); other JSON files
    in the folder (other benchmarks' outputs) are passed over."""
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            out.append((path, BenchResult.load(path)))
        except ValueError:
            continue
    return sorted(out, key=lambda pr: str(pr[1].meta.get("date", "")), reverse=True)


def newest_per_platform(recorded) -> list:
    """Names of the newest recorded run of each platform (cpu, gpu, ...), newest first, from ``load_recorded``'s
    (path-or-name, BenchResult) list: what the Timing page shows side by side before anything is chosen."""
    seen, out = set(), []
    for name, run in recorded:
        plat = run.meta.get("platform", "?")
        if plat not in seen:
            seen.add(plat)
            out.append(name)
    return out


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    return o


# =====================================================================================================================
# system information
# =====================================================================================================================
def _platform() -> str:
    import jax

    return jax.devices()[0].platform


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def thread_settings() -> dict:
    """How many threads XLA may use here: CPU count, the process's CPU affinity, XLA_FLAGS and the BLAS/OpenMP
    variables (XLA's CPU backend uses all cores of the affinity set unless XLA_FLAGS restricts it)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    flags = os.environ.get("XLA_FLAGS", "")
    single = "xla_cpu_multi_thread_eigen=false" in flags.replace(" ", "")
    return {"cpu_count": os.cpu_count(), "affinity_cpus": affinity, "XLA_FLAGS": flags,
            "env": {k: os.environ[k] for k in _THREAD_VARS if k in os.environ},
            "xla_threads": "single-threaded Eigen (XLA_FLAGS)" if single else f"all ({affinity or os.cpu_count()})"}


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def system_info() -> dict:
    import jax
    import jaxlib

    dev = jax.devices()[0]
    kind = getattr(dev, "device_kind", "") or dev.platform
    name = _cpu_model() if dev.platform == "cpu" else kind
    return {"device": f"{dev.platform.upper()} · {name}", "platform": dev.platform, "device_kind": kind,
            "device_count": jax.device_count(), "cpu_model": _cpu_model(), "jax": jax.__version__,
            "jaxlib": jaxlib.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", "threads": thread_settings()}


def default_mem_limit() -> int:
    """Bytes a single point may use: 85 % of the free device memory on an accelerator, half the available RAM on
    CPU (MemAvailable), 2 GiB when neither can be read."""
    import jax

    dev = jax.devices()[0]
    stats = None
    try:
        stats = dev.memory_stats()
    except Exception:  # noqa: BLE001 - not every backend implements it
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(0.85 * (stats["bytes_limit"] - stats.get("bytes_in_use", 0)))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except (OSError, ValueError, IndexError):
        pass
    return 2 << 30


def _device_peak():
    import jax

    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001
        return None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


# =====================================================================================================================
# measuring one point
# =====================================================================================================================
def make_inputs(dim: int, config: BenchConfig):
    """Parameters and a batch for one D: W = I + Xavier-normal noise of gain 0.01, b = 0, R = Wᵀ (the SNF
    initialisation of ``flow.init_params(init="identity_noise", with_R=True)``: well conditioned at any D) and
    standard-normal rows.  Drawn with numpy, so no per-shape JAX compilation is spent on making inputs."""
    import jax.numpy as jnp

    from .flow import FlowSpec

    spec = FlowSpec(int(dim), config.layers)
    rng = np.random.default_rng(config.seed)
    L, D = config.layers, int(dim)
    W = rng.standard_normal((L, D, D), dtype=np.float32)
    W *= np.float32(0.01 * math.sqrt(2.0 / (D + D)))
    W += np.eye(D, dtype=np.float32)[None]
    params = {"W": jnp.asarray(W), "b": jnp.zeros((L, D), jnp.float32),
              "R": jnp.asarray(np.ascontiguousarray(np.swapaxes(W, -1, -2)))}
    x = jnp.asarray(rng.standard_normal((config.batch, D), dtype=np.float32))
    return spec, params, x


def _is_oom(e: BaseException) -> bool:
    msg = str(e).lower()
    return isinstance(e, MemoryError) or "resource_exhausted" in msg or "out of memory" in msg or "oom" in msg.split()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def predict_time(method: str, dim: int, previous: list) -> float | None:
    """Seconds per evaluation predicted for ``dim`` from the method's earlier measured points: extrapolated from the
    last point with exponent max(theoretical order, slope of the last two points).  None without a previous point."""
    prev = [p for p in previous if p.status == "ok" and p.dim < dim]
    if not prev:
        return None
    prev = sorted(prev, key=lambda p: p.dim)
    exponent = ORDER[method]
    if len(prev) >= 2:
        exponent = max(exponent, min(4.0, fit_slope([prev[-2].dim, prev[-1].dim],
                                                     [prev[-2].time_s, prev[-1].time_s])))
    return prev[-1].time_s * (dim / prev[-1].dim) ** exponent


def measure_point(method: str, dim: int, config: BenchConfig, previous=(), mem_limit: int | None = None,
                  inputs=None, should_stop=None) -> Point:
    """Time one gradient evaluation of ``method`` at dimension ``dim`` (see the module docstring for the guards).
    ``previous`` are this method's earlier points (for the prediction), ``inputs`` an optional (spec, params, x) from
    ``make_inputs`` shared between methods, ``should_stop()`` ends the repeats early (cancel)."""
    import jax
    import jax.numpy as jnp

    from .gradients import make_grad_fn

    check_method(method)
    t_start = time.perf_counter()
    previous = list(previous)
    pred = predict_time(method, dim, previous)
    last_compile = next((p.compile_s for p in sorted(previous, key=lambda p: -p.dim) if p.compile_s), 0.0)
    if pred is not None and last_compile + 2 * pred > config.cap_s:
        return Point(method, dim, "too_slow", note=f"predicted {pred:.3g} s per evaluation: warm-up plus one timed "
                     f"call would exceed the {config.cap_s:g} s per-point cap")
    mem_limit = int(mem_limit or config.mem_limit or default_mem_limit())
    try:
        spec, params, x = inputs if inputs is not None else make_inputs(dim, config)
        if method != "self_normalizing":
            params = {k: v for k, v in params.items() if k != "R"}
        hyper = {"lam": jnp.asarray(config.lam, jnp.float32)}
        args = (params, x, hyper)
        t0 = time.perf_counter()
        compiled = jax.jit(make_grad_fn(method, spec)).lower(*args).compile()
        compile_s = time.perf_counter() - t0
        mem, detail = None, None
        try:
            ma = compiled.memory_analysis()
            if ma is not None:
                detail = {k: int(getattr(ma, k)) for k in ("argument_size_in_bytes", "output_size_in_bytes",
                                                          "temp_size_in_bytes", "alias_size_in_bytes",
                                                          "generated_code_size_in_bytes")}
                mem = (detail["argument_size_in_bytes"] + detail["output_size_in_bytes"] +
                       detail["temp_size_in_bytes"] - detail["alias_size_in_bytes"])
        except Exception:  # noqa: BLE001 - memory analysis is optional
            pass
        if mem is not None and mem > mem_limit:
            return Point(method, dim, "too_big", compile_s=compile_s, mem_bytes=mem, mem_detail=detail,
                         wall_s=time.perf_counter() - t_start,
                         note=f"needs about {mem / 2 ** 30:.3g} GiB, over the {mem_limit / 2 ** 30:.3g} GiB limit")

        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))  # warm-up: first run of the compiled executable, not counted
        first = time.perf_counter() - t0
        number = 1 if first >= MIN_SAMPLE_S else max(1, min(1000, int(MIN_SAMPLE_S / max(first, 1e-6))))
        times = []
        while len(times) < config.repeats:
            t0 = time.perf_counter()
            for _ in range(number):
                jax.block_until_ready(compiled(*args))
            times.append((time.perf_counter() - t0) / number)
            elapsed = time.perf_counter() - t_start
            if elapsed + times[-1] * number > config.cap_s or (should_stop is not None and should_stop()):
                break
    except Exception as e:  # noqa: BLE001 - one method failing must not end the run
        status = "too_big" if _is_oom(e) else "error"
        return Point(method, dim, status, wall_s=time.perf_counter() - t_start,
                     note=("out of memory: " if status == "too_big" else "") + _first_line(e))
    wall = time.perf_counter() - t_start
    note = ""
    if len(times) < config.repeats:
        note = f"{len(times)} of {config.repeats} repeats fitted in the {config.cap_s:g} s cap"
    if wall > config.cap_s:
        note = (note + "; " if note else "") + f"this point took {wall:.3g} s > cap: stopped after this D"
    return Point(method, dim, "ok", time_s=float(statistics.median(times)), times_s=times, calls_per_sample=number,
                 compile_s=compile_s, first_call_s=first, mem_bytes=mem, mem_detail=detail,
                 device_peak_bytes=_device_peak(), wall_s=wall, note=note)


# =====================================================================================================================
# running a grid
# =====================================================================================================================
class BenchmarkRun:
    """A grid run that advances one point per ``step()``: D in the outer loop, methods inner (the methods being
    compared at one D are measured close together in time, so machine noise hits them alike)."""

    def __init__(self, config: BenchConfig, mem_limit: int | None = None, note: str = ""):
        self.config = config
        self.plan = [(d, m) for d in config.dims for m in config.methods]
        self.index = 0
        self.cancelled = False
        self._inputs = (None, None)
        self._stopped = {}
        self._t0 = time.time()
        self.mem_limit = int(mem_limit or config.mem_limit or default_mem_limit())
        info = system_info()
        self.result = BenchResult(meta={
            **info, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "label": f"{info['device']} · "
            f"{time.strftime('%Y-%m-%d')}", "note": note, "load_average_start": load_average(),
            "dims": list(config.dims), "methods": list(config.methods), "batch": config.batch,
            "layers": config.layers, "dtype": "float32", "repeats": config.repeats, "cap_s": config.cap_s,
            "mem_limit_bytes": self.mem_limit, "fit_range": list(config.fit_range), "seed": config.seed,
            "lam": config.lam, "activation": "smooth_leaky_relu", "init": "identity_noise",
            "timing": "median over repeats of one gradient evaluation (forward + backward), block_until_ready, "
                      "compiled ahead of time, one warm-up call excluded"}, points=[])

    @property
    def total(self) -> int:
        return len(self.plan)

    @property
    def finished(self) -> bool:
        return self.cancelled or self.index >= len(self.plan)

    @property
    def next_task(self):
        return None if self.finished else self.plan[self.index]

    def cancel(self):
        self.cancelled = True
        self._finish()

    def step(self, should_stop=None) -> Point | None:
        """Measure (or skip) the next planned point; None when the run is over."""
        if self.finished:
            return None
        dim, method = self.plan[self.index]
        if method in self._stopped:
            point = Point(method, dim, "skipped", note=f"{method} was stopped at D={self._stopped[method]}")
        else:
            if self._inputs[0] != dim:
                self._inputs = (None, None)  # free the previous D's arrays first
                self._inputs = (dim, make_inputs(dim, self.config))
            previous = [p for p in self.result.points if p.method == method]
            point = measure_point(method, dim, self.config, previous, self.mem_limit, self._inputs[1], should_stop)
            if point.status != "ok" or "stopped after" in point.note:
                self._stopped[method] = dim
        self.result.points.append(point)
        self.index += 1
        if self.finished:
            self._finish()
        return point

    def _finish(self):
        self._inputs = (None, None)
        self.result.meta.update({"load_average_end": load_average(), "duration_s": round(time.time() - self._t0, 2),
                                 "cancelled": bool(self.cancelled),
                                 "completed_points": len(self.result.points), "planned_points": len(self.plan)})


def iter_benchmark(config: BenchConfig, **kw):
    """Generator over the points of a run (``run.result`` holds everything so far); stop iterating to cancel."""
    run = BenchmarkRun(config, **kw)
    try:
        while not run.finished:
            yield run.step(), run
    finally:
        if not run.finished:
            run.cancel()


def run_benchmark(config: BenchConfig, on_point=None, **kw) -> BenchResult:
    """Run the whole grid; ``on_point(point, run)`` is called after every point and may return False to cancel."""
    run = BenchmarkRun(config, **kw)
    while not run.finished:
        point = run.step()
        if on_point is not None and on_point(point, run) is False:
            run.cancel()
    return run.result


_MACHINE_LOCK = threading.Lock()  # one point at a time per process: concurrent sessions would spoil each other's timing


class BenchmarkWorker:
    """Runs a grid in a background thread; a UI polls ``snapshot()`` and may ``cancel()`` (effective after the
    current point's repeat).  Points of workers in the same process take turns (``waiting`` while another holds the
    machine)."""

    def __init__(self, config: BenchConfig, **kw):
        self.run = BenchmarkRun(config, **kw)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self.error = None
        self.waiting = False
        self.current = None
        self.thread = threading.Thread(target=self._loop, name="flowlab-benchmark", daemon=True)

    def start(self) -> "BenchmarkWorker":
        self.thread.start()
        return self

    def cancel(self):
        self._cancel.set()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def _loop(self):
        try:
            while not self.run.finished and not self._cancel.is_set():
                with self._lock:
                    self.current = self.run.next_task
                self.waiting = True
                with _MACHINE_LOCK:
                    self.waiting = False
                    if self._cancel.is_set():
                        break
                    point = self.run.step(should_stop=self._cancel.is_set)
                with self._lock:
                    self.current = None if point is None else self.run.next_task
        except Exception as e:  # noqa: BLE001 - reported to the UI instead of dying silently
            self.error = _first_line(e)
        finally:
            with self._lock:
                if not self.run.finished:
                    self.run.cancel()
                self.current = None

    def snapshot(self) -> dict:
        with self._lock:
            res = BenchResult(copy.deepcopy(self.run.result.meta), list(self.run.result.points))
            return {"result": res, "done": len(res.points), "total": self.run.total, "current": self.current,
                    "finished": self.run.finished and not self.alive, "cancelled": self.run.cancelled,
                    "waiting": self.waiting, "error": self.error}


# =====================================================================================================================
# command line
# =====================================================================================================================
def _format_summary(res: BenchResult) -> str:
    lines = []
    slopes = res.slopes()
    lo, hi = res.meta.get("fit_range", FIT_RANGE)
    sp = res.speedups()
    big = None
    for m in res.methods:
        d, t = res.series(m)
        s = slopes[m]
        extra = ""
        if len(sp.get(m, ([],))[0]) and m != "exact":
            big = int(sp[m][0][-1])
            extra = f"  {sp[m][1][-1]:7.1f}x faster than exact at D={big}"
        last = f"{t[-1] * 1e3:10.2f} ms at D={int(d[-1])}" if len(d) else "not measured"
        lines.append(f"  {m:18s} slope {s['all']:5.2f} (all D)  {s['window']:5.2f} (D in [{lo:g}, {hi:g}])  "
                     f"{last}{extra}")
    for m, s in res.stopped().items():
        lines.append(f"  {m} stopped{' at D=' + str(s['dim']) if s.get('dim') else ''}: {s['note']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m flowlab bench",
        description="Time one gradient evaluation (forward + backward) of each method against the dimension D.",
        epilog="Example: python -m flowlab bench --max-dim 4096 --out assets/benchmarks/timing_cpu.json")
    ap.add_argument("--dims", help="comma-separated dimensions, e.g. 64,128,256 (default: log-spaced grid, 2 points "
                                   "per doubling, from --min-dim to --max-dim)")
    ap.add_argument("--min-dim", type=int, default=64)
    ap.add_argument("--max-dim", type=int, default=None, help="default: 4096 on CPU, 16384 on an accelerator")
    ap.add_argument("--per-octave", type=int, default=2)
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=f"comma-separated subset of "
                    f"{','.join(DEFAULT_METHODS)}")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cap", type=float, default=30.0, help="per-point time cap in seconds (default 30)")
    ap.add_argument("--mem-limit-gb", type=float, default=None, help="per-point memory limit (default: automatic)")
    ap.add_argument("--fit", default=f"{FIT_RANGE[0]},{FIT_RANGE[1]}", help="D window of the headline slope fit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note", default="", help="free text stored with the result (e.g. machine load)")
    ap.add_argument("--out", help="write the result here (.json, or .csv for the table)")
    ap.add_argument("--csv", help="also write the table as CSV here")
    ap.add_argument("--quiet", action="store_true")
    return ap


def config_from_args(args) -> BenchConfig:
    if args.dims:
        dims = parse_dims(args.dims)
    else:
        dims = default_dims(args.max_dim or default_max_dim(), args.min_dim, args.per_octave)
    try:
        fit = tuple(float(v) for v in str(args.fit).split(","))
    except ValueError:
        raise ValueError(f"--fit takes two numbers like 512,4096, got {args.fit!r}.") from None
    if len(fit) != 2:
        raise ValueError(f"--fit takes two numbers like 512,4096, got {args.fit!r}.")
    if args.mem_limit_gb is not None and not args.mem_limit_gb > 0:
        raise ValueError(f"--mem-limit-gb must be positive, got {args.mem_limit_gb}.")
    mem = None if args.mem_limit_gb is None else int(args.mem_limit_gb * 2 ** 30)
    return BenchConfig(dims=dims, methods=parse_methods(args.methods), batch=args.batch, layers=args.layers,
                       repeats=args.repeats, cap_s=args.cap, mem_limit=mem, fit_range=fit, seed=args.seed)


def cli_main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        for path in (args.out, args.csv):
            if path and not Path(path).resolve().parent.is_dir():
                raise ValueError(f"The folder of {path} does not exist.")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))

    def on_point(p: Point, run: BenchmarkRun):
        t = f"{p.time_s * 1e3:10.3f} ms" if p.time_s is not None else " " * 13
        mem = f"{p.mem_bytes / 2 ** 20:9.1f} MiB" if p.mem_bytes else " " * 13
        say(f"[{run.index:3d}/{run.total}] D={p.dim:6d} {p.method:18s} {p.status:8s} {t} {mem}  {p.note}")

    info = system_info()
    say(f"FlowLab gradient timing on {info['device']} (JAX {info['jax']}, threads: {info['threads']['xla_threads']}, "
        f"load average {load_average()}): {len(config.dims)} dimensions x {len(config.methods)} methods, batch "
        f"{config.batch}, {config.layers} layers, cap {config.cap_s:g} s per point")
    try:
        res = run_benchmark(config, on_point=on_point, note=args.note)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    say(f"done in {res.meta.get('duration_s', 0):.0f} s, load average at the end {res.meta.get('load_average_end')}")
    say(_format_summary(res))
    if args.out:
        say(f"wrote {res.save(args.out)}")
    if args.csv:
        Path(args.csv).write_text(res.to_csv())
        say(f"wrote {args.csv}")
    return 0


__all__ = ["BenchConfig", "BenchResult", "BenchmarkRun", "BenchmarkWorker", "Point", "cli_main", "default_dims",
           "fit_slope", "iter_benchmark", "load_recorded", "measure_point", "newest_per_platform", "parse_dims",
           "parse_methods", "predict_time", "run_benchmark", "METHODS"]
