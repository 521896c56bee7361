"""A timing run's results: its points, the views the page and the CLI read (series, slopes, speed-ups, where a method
stopped, the headline and the caption), and the JSON/CSV file format of ``assets/benchmarks/``."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..gradients import REGISTRY
from ..metrics import fit_slope
from ..system import jsonable
from .config import FIT_RANGE

SCHEMA = "flowlab.benchmark/1"
STATUSES = ("ok", "too_slow", "too_big", "error", "skipped")
STATUS_LABELS = {"ok": "measured", "too_slow": "stopped: too slow", "too_big": "stopped: too big for memory",
                 "error": "stopped: error", "skipped": "skipped (method stopped at a smaller D)"}
HEADLINE = ("relative", "exact")  # the comparison of Gresele et al. Fig. 1 left: t(exact) / t(relative)


def method_label(name: str) -> str:
    """The registry's label of a method (a recorded file may name one this version does not know)."""
    return REGISTRY[name].label if name in REGISTRY else name


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
                "summary": jsonable(self.summary())}

    def to_json(self) -> str:
        return json.dumps(jsonable(self.to_dict()), indent=1, allow_nan=False)

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


# ---- recorded runs -------------------------------------------------------------------------------------------------
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


# ---- what the page writes about a run --------------------------------------------------------------------------------
class Metric(NamedTuple):
    """One headline figure: label, value and an optional explanation (a Streamlit ``st.metric``'s arguments)."""

    label: str
    value: str
    help: str | None = None


def headline(run: BenchResult, where: str) -> tuple[Metric, Metric, Metric]:
    """The run's headline (``where``: "live" or "recorded", said in each explanation): how many times faster the
    relative gradient is than the exact one at the largest D where both were measured, and the fitted log-log slope
    of each (in the run's D window, else over the larger half of the measured D; "—" when there are too few points).
    Labels stay short (they share a row of three on a 1024-pixel screen); the window is in the explanation."""
    fast, ref = HEADLINE
    d, r = run.speedups(ref).get(fast, ([], []))
    if len(d):
        first = Metric(f"{fast} vs {ref}, D = {int(d[-1])}", f"{r[-1]:.1f}× faster",
                       f"t({ref}) / t({fast}) at the largest D where both were measured ({where} run)")
    else:
        first = Metric(f"{fast} vs {ref}", "—", f"needs both methods measured at the same D ({where} run)")
    slopes = run.slopes()
    out = [first]
    for meth in HEADLINE:
        s = slopes.get(meth)
        if s is None:
            out.append(Metric(f"slope of {meth}", "—", f"{meth} was not measured ({where} run)"))
            continue
        lo, hi = s["window_range"]
        fit = "least-squares slope of log t against log D"
        if np.isfinite(s["window"]):
            out.append(Metric(f"slope of {meth}", f"{s['window']:.2f}", f"{fit} over D∈[{lo:g}, {hi:g}] ({where} "
                                                                        "run)"))
        else:
            out.append(Metric(f"slope of {meth}", f"{s['upper']:.2f}" if np.isfinite(s["upper"]) else "—",
                              f"{fit} over the larger half of the measured D: fewer than two in [{lo:g}, {hi:g}] "
                              f"({where} run)"))
    return tuple(out)


def run_caption(run: BenchResult) -> str:
    """One line naming where and how a run was measured: device, JAX, date, batch, layers, XLA threads, load, note."""
    m = run.meta
    thr = (m.get("threads") or {}).get("xla_threads", "?")
    load = m.get("load_average_start")
    return (f"{m.get('device', '?')} · JAX {m.get('jax', '?')} · {str(m.get('date', '?'))[:16].replace('T', ' ')} · "
            f"batch {m.get('batch')}, {m.get('layers')} layers, float32 · XLA threads: {thr}"
            + (f" · load average at start {load[0]:.2f}" if load else "")
            + (f" · {m['note']}" if m.get("note") else ""))


def stopped_caption(run: BenchResult) -> str:
    """'Stopped: <method> — <reason>; ...' for the methods the guards stopped, or '' when none was."""
    stopped = run.stopped()
    if not stopped:
        return ""
    return "Stopped: " + "; ".join(f"{method_label(m)} — {s['note']}" for m, s in stopped.items())


def file_name(run: BenchResult, suffix: str) -> str:
    """Download name of a run, e.g. 'flowlab_timing_2026-11-23T101500.csv' (its date without colons)."""
    stamp = str(run.meta.get("date", ""))[:19].replace(":", "")
    return f"flowlab_timing_{stamp}.{suffix}"
