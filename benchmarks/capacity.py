"""How many students one FlowLab server serves while each still sees a live Playground.

N students open the Playground (its defaults from the URL: moons, the relative gradient, ``--query`` for others)
and press Train at the same moment; for ``--seconds`` each one's page is watched as the browser would show it.
Each student is a ``benchmarks/stclient.py`` client: the browser's own WebSocket protocol (protobuf on
``/_stcore/stream``), the page load first, the Train button clicked through its widget id, the live fragment's
``run_every`` timer kept like the frontend keeps it.  No Chromium: a browser costs about a core by itself on this
machine, and what it draws costs the student's machine, not the server.  The clients run in this process (one
asyncio loop); their own CPU is reported, because on one machine they take it from the server.

Per N: steps/s each student sees (the Step counter over wall time after its first step: median and worst),
redraws/s each receives (runs of the live fragment) and how many changed the Step shown, the longest gap between
two redraws and the longest the Step stood still, time from the click to the first step, the latency of the Train
and Pause clicks (click -> the button's new label), the queue (students told "you are #k in line", with the
message), the server's RSS and CPU (its processes' CPU seconds over wall seconds), this process's CPU, and the load
average before and after.  The headless rate of the same settings (``python -m flowlab train``, same machine, same
run, before any server starts) gives the ratio.

Students per core: the largest N whose every page loaded and every admitted student (one not told its place in
line) kept >= 1 redraw/s and a steady Step rate (the counter rose and never stood still more than ``STILL_S`` s of
the watched window); the students who trained at once in that round, divided by the cores.  Students who waited
in line are reported with the message their page showed.  ``summary_lines`` writes the figures for deploy/README.md.

    python benchmarks/capacity.py                                # N = 1, 5, 10, 20, 40 on a server it starts
    python benchmarks/capacity.py --sessions 1,5,10,20 --seconds 30 --out assets/benchmarks/capacity_cpu.jsonl
    python benchmarks/capacity.py --replicas 2 --sessions 10,20  # K replicas behind nginx (deploy/run_local.py)
    python benchmarks/capacity.py --url http://host:8080 --server-pid 1234 --sessions 5   # a running server
    python benchmarks/capacity.py --summary assets/benchmarks/capacity_cpu.jsonl   # the README lines of the last record

Point ``--url`` only at a server no class is using: N students training is the load it measures.  A server this
script starts is started afresh for every N (clean RSS and CPU figures) with one JAX compile cache for the whole run
(a new temporary folder unless ``--jax-cache``), so the first N pays the compilations.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):  # run as a script or imported by the tests: the app and stclient.py by name
    if _p not in sys.path:
        sys.path.insert(0, _p)

from stclient import StreamlitClient, place_in_line  # noqa: E402

PAGE = "playground"
TRAIN = "pg_train"  # the Train / Pause / Resume button's key (pages/playground.py)
QUEUE_NOTE = r"in line"
GOAL_REDRAWS = 1.0  # redraws per second every admitted student should keep (issue 19)
STILL_S = 10.0  # the longest a training student's Step counter may stand still and still count as steady
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# ---- the machine and the server's processes (Linux /proc) ------------------------------------------------------------
def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with the pid, names one process for good."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the replicas and nginx under deploy/run_local.py)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def machine_busy() -> tuple[float, float] | None:
    """(busy, total) jiffies of all cores from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v) - idle, sum(v)
    except (OSError, ValueError, IndexError):
        return None


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class ServerProbe:
    """CPU seconds and RSS of the server's processes (``pids()`` is re-read: a replica may restart)."""

    def __init__(self, root_pid: int | None):
        self.root = root_pid

    def pids(self) -> list[int]:
        return [] if self.root is None else descendants(self.root)

    def sample(self) -> dict | None:
        pids = self.pids()
        if not pids:
            return None
        cpu = [cpu_seconds(p) for p in pids]
        rss = [rss_bytes(p) for p in pids]
        return {"cpu_s": sum(c for c in cpu if c), "rss": sum(r for r in rss if r), "procs": len(pids)}


# ---- targets: a server started here, K replicas behind nginx, or a given URL -----------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    deadline = time.time() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.time() < deadline:
        try:
            with opener.open(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer /_stcore/health within {timeout:.0f} s")


class Target:
    """Where the students connect; ``start()`` / ``stop()`` around each N when this script owns the server."""

    def __init__(self, args, cache: str, log_dir: str):
        self.args, self.cache, self.log_dir = args, cache, log_dir
        self.proc: subprocess.Popen | None = None
        self.url = args.url
        self.kind = "url" if args.url else ("replicas" if args.replicas else "server")
        self.probe = ServerProbe(args.server_pid)

    def start(self, tag: str):
        if self.kind == "url":
            return
        env = {**os.environ, "FLOWLAB_JAX_CACHE": self.cache}
        for name, value in (("FLOWLAB_TRAIN_SLOTS", self.args.train_slots),
                            ("FLOWLAB_MAX_TRAINERS", self.args.max_trainers)):
            if value:
                env[name] = str(value)
        log = open(os.path.join(self.log_dir, f"server-{tag}.log"), "w")
        if self.kind == "server":
            port = _free_port()
            cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                   "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
        else:
            port = _free_port()
            cmd = [sys.executable, str(ROOT / "deploy" / "run_local.py"), "--replicas", str(self.args.replicas),
                   "--port", str(port), "--bind", "127.0.0.1", "--first-port", "0", "--jax-cache", self.cache,
                   "--run-dir", os.path.join(self.log_dir, f"run-{tag}")]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self.url = f"http://127.0.0.1:{port}"
        self.probe = ServerProbe(self.proc.pid)
        try:
            _wait_healthy(self.url, self.proc, 180)  # run_local.py starts nginx once every replica is healthy
        except RuntimeError:
            self.stop()
            raise

    def stop(self):
        """SIGTERM (run_local.py stops nginx, then the replicas); what is left after 20 s, of the processes this
        started, is killed."""
        if self.proc is None:
            return
        ours = [(pid, start_time(pid)) for pid in self.probe.pids()]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.5)
        for pid, started in ours[1:]:
            if started is None or start_time(pid) != started:  # gone (or the number now names another process)
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc = None


# ---- one round: N students -------------------------------------------------------------------------------------------
def _label_of(s) -> str | None:
    try:
        return s.buttons[s.button_id(key=TRAIN)].label
    except KeyError:
        return None


def _loaded(s) -> bool:
    """The page has finished its first run and its Train button can be clicked."""
    try:
        b = s.buttons[s.button_id(key=TRAIN)]
    except KeyError:
        return False
    return s.finished >= 1 and not b.disabled and not s.script_running


async def _sampler(probe: ServerProbe, out: list, stop: asyncio.Event, every: float = 1.0):
    while not stop.is_set():
        s = probe.sample()
        if s is not None:
            out.append((time.monotonic(), s))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


async def _click_all(clients, labels, timeout: float) -> list:
    """Click Train/Pause on every client at once; each one's latency: the click to the button's new label."""
    sent = {}
    for c in clients:
        try:
            sent[c.name] = await c.click(key=TRAIN)
        except (KeyError, ValueError) as e:
            c.error = c.error or f"click: {e}"
    await asyncio.gather(*(c.wait_for(lambda s, t=sent.get(c.name, 0.0): s.label_after(TRAIN, labels, t) is not None,
                                      timeout) for c in clients if c.name in sent))
    lat = []
    for c in clients:
        if c.name in sent:
            t = c.state.label_after(TRAIN, labels, sent[c.name])
            lat.append(None if t is None else t - sent[c.name])
    return sent, lat


def _started(t_click: float):
    """The student's page shows training (a Step above 0) or its place in line, after the click."""
    return lambda s: any(r.t >= t_click and r.value > 0 for r in s.redraws[-3:]) or \
        any(t >= t_click for t, _ in s.noted[-1:])


async def round_n(url: str, n: int, query: str, seconds: float, probe: ServerProbe, load_timeout: float,
                  start_timeout: float) -> dict:
    """N clients: load the page, press Train together, wait until every page trains or shows its place in line
    (compilation, at most ``start_timeout`` s), watch ``seconds`` s, press Pause, disconnect."""
    clients = [StreamlitClient(url, page=PAGE, query=query, note_pattern=QUEUE_NOTE, name=f"s{i}") for i in range(n)]
    samples: list = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sampler(probe, samples, stop))
    load_avg_before = loadavg()
    t_load = time.monotonic()
    connected = await asyncio.gather(*(c.connect() for c in clients), return_exceptions=True)
    for c, r in zip(clients, connected):
        if isinstance(r, BaseException):
            c.error = f"connect: {type(r).__name__}: {r}"
    ok = await asyncio.gather(*(c.wait_for(_loaded, load_timeout) for c in clients))
    all_loaded_s = time.monotonic() - t_load
    first_view = [c.state.redraws[0].t - t_load for c in clients if c.state.redraws]
    live = [c for c, good in zip(clients, ok) if good]
    await asyncio.sleep(1.0)
    t_click, train_lat = await _click_all(live, ("Pause",), start_timeout)
    t_first = min(t_click.values(), default=time.monotonic())
    started = await asyncio.gather(*(c.wait_for(_started(t_click[c.name]),
                                                max(0.0, t_first + start_timeout - time.monotonic()))
                                     for c in live if c.name in t_click))
    p0, m0, c0, w0 = probe.sample(), machine_busy(), time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    t_end = time.monotonic()
    p1, m1, c1 = probe.sample(), machine_busy(), time.process_time()
    wall = t_end - w0
    per = [session_summary(c, t_click[c.name], w0, t_end) for c in live if c.name in t_click]
    _, pause_lat = await _click_all(live, ("Resume", "Train"), 30.0)  # as a student would at the end, under load
    stop.set()
    await sampler
    await asyncio.gather(*(c.close() for c in clients))
    row = {"sessions": n, "seconds": seconds, "loaded": len(live),
           "load_failed": [f"{c.name}: {c.error or 'timeout'}" for c, good in zip(clients, ok) if not good],
           "all_pages_loaded_s": all_loaded_s, "first_view_s": _stats(first_view),
           "click_to_watch_s": w0 - t_first, "not_started_in_time": sum(not x for x in started),
           "train_click_s": _stats(train_lat), "train_click_unanswered": sum(x is None for x in train_lat),
           "pause_click_s": _stats(pause_lat), "pause_click_unanswered": sum(x is None for x in pause_lat),
           "per_session": per, "load_average_before": load_avg_before, "load_average_after": loadavg()}
    row.update(aggregate(per))
    row["client_cpu_cores"] = (c1 - c0) / wall
    if m0 and m1 and m1[1] > m0[1]:
        row["machine_busy_cores"] = (m1[0] - m0[0]) / (m1[1] - m0[1]) * (os.cpu_count() or 1)
    if p0 and p1:
        row["server_cpu_cores"] = (p1["cpu_s"] - p0["cpu_s"]) / wall
        row["server_procs"] = p1["procs"]
    if samples:
        rss = [s["rss"] for _, s in samples]
        row["server_rss_mb"] = {"before": rss[0] / 2**20, "peak": max(rss) / 2**20, "end": rss[-1] / 2**20}
        row["server_rss_per_session_mb"] = (max(rss) - rss[0]) / 2**20 / max(1, n)
    return row


def session_summary(c: StreamlitClient, t_click: float, t0: float, t_end: float) -> dict:
    """What one student saw: the first step after the click, then the watched window [t0, t_end]."""
    s = c.state
    after = [r for r in s.redraws if r.t >= t_click and r.value == r.value]
    red = [r for r in after if t0 <= r.t <= t_end]
    window = t_end - t0
    out = {"name": c.name, "error": c.error, "exceptions": s.exceptions[:3], "replica": c.replica,
           "redraws": len(red), "redraws_per_s": len(red) / window if window > 0 else 0.0,
           "kbytes_received": s.bytes / 1024, "shown_steps_per_s": s.shown("Steps/s"),
           "step_end": red[-1].value if red else None}
    first = next((r for r in after if r.value > 0), None)
    out["first_step_s"] = first.t - t_click if first else None
    if len(red) >= 2 and red[-1].t > red[0].t:
        span = red[-1].t - red[0].t
        out["steps_per_s"] = (red[-1].value - red[0].value) / span
        out["step_changes_per_s"] = sum(1 for a, b in zip(red, red[1:]) if b.value != a.value) / span
    else:
        out["steps_per_s"], out["step_changes_per_s"] = 0.0, 0.0
    gaps = [b.t - a.t for a, b in zip(red, red[1:])]
    out["max_gap_s"] = max(gaps) if gaps else None
    moved = [b.t for a, b in zip(red, red[1:]) if b.value != a.value]  # when the Step shown changed
    edges = [t0, *moved, t_end]
    out["longest_still_s"] = max(b - a for a, b in zip(edges, edges[1:]))
    notes = [(t, txt) for t, txt in s.noted if t >= t_click]
    out["queued"] = bool(notes)
    if notes:
        out["queue_note"] = notes[0][1]
        out["queue_place_first"] = place_in_line(notes[0][1])
        out["queue_place_last"] = place_in_line(notes[-1][1])
    return out


def _stats(xs) -> dict | None:
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return {"median": statistics.median(xs), "p95": p95, "max": xs[-1], "n": len(xs)}


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def steady(p: dict) -> bool:
    """The student's Step counter rose and never stood still more than ``STILL_S`` s of the watched window.  A
    record made before ``longest_still_s`` was kept: the mean time between changes (1 / step_changes_per_s)."""
    if not p.get("steps_per_s"):
        return False
    still = p.get("longest_still_s")
    if still is None:
        still = 1 / p["step_changes_per_s"] if p.get("step_changes_per_s") else float("inf")
    return still <= STILL_S


def live(p: dict) -> bool:
    """What issue 19 asks for every admitted student: no error, >= ``GOAL_REDRAWS`` redraws/s, a steady Step."""
    return not p.get("error") and p["redraws_per_s"] >= GOAL_REDRAWS and steady(p)


def aggregate(per: list) -> dict:
    waiting = [p for p in per if p["queued"]]
    rates = [p["steps_per_s"] for p in per]
    out = {"steps_per_s_median": statistics.median(rates) if rates else None,
           "steps_per_s_worst": min(rates) if rates else None,
           "steps_per_s_sum": sum(rates),
           "redraws_per_s_median": statistics.median([p["redraws_per_s"] for p in per]) if per else None,
           "redraws_per_s_worst": min((p["redraws_per_s"] for p in per), default=None),
           "replicas_seen": dict(sorted(Counter(p["replica"] for p in per if p["replica"]).items())),
           "queued": len(waiting), "queue_notes": sorted({p["queue_note"] for p in waiting})[:3],
           "queue_places": sorted(p["queue_place_first"] for p in waiting if p.get("queue_place_first"))}
    trained = [p for p in per if not p["queued"]]
    out["admitted"] = len(trained)
    if trained:
        out["admitted_steps_per_s_median"] = statistics.median(p["steps_per_s"] for p in trained)
        out["admitted_steps_per_s_worst"] = min(p["steps_per_s"] for p in trained)
        out["admitted_redraws_per_s_worst"] = min(p["redraws_per_s"] for p in trained)
        out["admitted_step_changes_per_s_worst"] = min(p["step_changes_per_s"] for p in trained)
        out["admitted_longest_still_s"] = max(p["longest_still_s"] for p in trained)
        out["admitted_max_gap_s"] = max((p["max_gap_s"] for p in trained if p["max_gap_s"]), default=None)
        out["admitted_first_step_s_median"] = _median([p["first_step_s"] for p in trained])
        out["admitted_first_step_s_worst"] = max((p["first_step_s"] for p in trained if p["first_step_s"]),
                                                 default=None)
        out["admitted_never_stepped"] = sum(p["first_step_s"] is None for p in trained)
    out["everyone_live"] = bool(per) and all(live(p) for p in per)
    out["admitted_live"] = bool(trained) and all(live(p) for p in trained)
    return out


def served(row: dict) -> bool:
    """Every page loaded and every admitted student was live (recomputed from the per-student figures, so an
    older record is judged by the same rule)."""
    trained = [p for p in row.get("per_session", []) if not p["queued"]]
    return row.get("loaded") == row["sessions"] and bool(trained) and all(live(p) for p in trained)


# ---- the run ---------------------------------------------------------------------------------------------------------
def cli_rate(query: str, seconds: float) -> dict:
    """The same settings trained headless (python -m flowlab train) on this machine: steps per training second."""
    from redraws import cli_rate as _cli  # noqa: PLC0415  (benchmarks/redraws.py: the same CLI call)

    return _cli(query, seconds)


def students_per_core(rows: list, cores: float) -> dict:
    """The largest N that was ``served``; its students who trained at once (not queued), per core."""
    good = [r for r in rows if served(r)]
    if not good:
        return {"students": 0, "training": 0, "queued": 0, "per_core": 0.0, "cores": cores}
    best = max(good, key=lambda r: r["sessions"])
    trained = [p for p in best["per_session"] if not p["queued"]]
    return {"students": best["sessions"], "training": len(trained), "queued": best["sessions"] - len(trained),
            "per_core": len(trained) / cores, "cores": cores,
            "steps_per_s_worst": min(p["steps_per_s"] for p in trained),
            "redraws_per_s_worst": min(p["redraws_per_s"] for p in trained)}


def print_table(rows: list, cli: dict | None):
    head = ("N", "steps/s med", "worst", "sum", "redraws/s med", "worst", "queued", "1st step", "click p95",
            "srv CPU", "srv RSS MB", "client CPU", "load after")
    print(" | ".join(head))
    for r in rows:
        rss = r.get("server_rss_mb") or {}
        click = r.get("train_click_s") or {}
        print(" | ".join(str(x) for x in (
            r["sessions"], _f(r.get("steps_per_s_median")), _f(r.get("steps_per_s_worst")),
            _f(r.get("steps_per_s_sum")), _f(r.get("redraws_per_s_median"), 2), _f(r.get("redraws_per_s_worst"), 2),
            r.get("queued"), _f(r.get("admitted_first_step_s_worst"), 1), _f(click.get("p95"), 2),
            _f(r.get("server_cpu_cores"), 2), _f(rss.get("peak")), _f(r.get("client_cpu_cores"), 2),
            r.get("load_average_after"))))
    if cli:
        print(f"headless CLI, same settings, same machine: {cli['cli_steps_per_s']:.0f} steps/s")


def _f(x, nd=0):
    return "—" if x is None else f"{x:,.{nd}f}"


def _row(record: dict, n: int) -> dict:
    return next(r for r in record["rows"] if r["sessions"] == n)


def _beyond(row: dict) -> str:
    """What happened in a round that was not served: who waited in line (their message) and how the admitted fared."""
    per = row.get("per_session", [])
    trained = [p for p in per if not p["queued"]]
    waited = [p for p in per if p["queued"]]
    parts = []
    if row.get("loaded") != row["sessions"]:
        parts.append(f"{row['sessions'] - row.get('loaded', 0)} pages did not load")
    if waited:
        places = sorted(p["queue_place_first"] for p in waited if p.get("queue_place_first"))
        span = f" (#{places[0]}–#{places[-1]})" if places else ""
        parts.append(f"{len(waited)} students were told their place in line{span}: \"{waited[0]['queue_note']}\"")
    if trained:
        never = sum(p["first_step_s"] is None for p in trained)
        slow = [p for p in trained if not live(p)]
        window = (row.get("click_to_watch_s") or 0) + row["seconds"]
        text = f"of the {len(trained)} not in line, {len(slow)} fell below {GOAL_REDRAWS:g} redraw/s or a steady Step"
        if never:
            text += f" ({never} showed no step at all in the {window:.0f} s after pressing Train)"
        parts.append(text)
    if row.get("server_cpu_cores") is not None:
        parts.append(f"the server used {row['server_cpu_cores']:.2f} cores meanwhile")
    return f"At N = {row['sessions']}, beyond that: " + "; ".join(parts) + "."


def _cores(n: float) -> str:
    return f"{n:g} core{'s' * (n != 1)}"


def summary_lines(record: dict, source: str = "assets/benchmarks/capacity_cpu.jsonl") -> list:
    """The README's capacity lines, every figure read from one ``--out`` record: students per core (recomputed with
    ``students_per_core``), what each student saw at that N, the server's memory per student, the first N beyond
    it, and the machine with its load."""
    system = record.get("recorded", {}).get("system", {})
    date = record.get("recorded", {}).get("date", "")[:10]
    cores = record["students_per_core"]["cores"]
    spc = students_per_core(record["rows"], cores)
    machine = system.get("threads", {}).get("cpu_count") or cores  # load and busy cores are machine-wide
    where = f"{_cores(cores)} of {system.get('device', 'an unnamed machine')}"
    lines = []
    if not spc["students"]:
        lines.append(f"**Capacity: not reached**: at no N measured ({', '.join(map(str, record['sessions']))}) on "
                     f"{where} did every admitted student keep ≥ {GOAL_REDRAWS:g} redraw/s and a steady Step "
                     f"(`{source}`, {date}).")
    else:
        n = spc["students"]
        r = _row(record, n)
        trained = [p for p in r["per_session"] if not p["queued"]]
        steps = [p["steps_per_s"] for p in trained]
        redraws = [p["redraws_per_s"] for p in trained]
        stills = [p.get("longest_still_s") for p in trained]
        if None not in stills:
            rule, still = f"never stood still more than {STILL_S:g} s", f"stood still at most {max(stills):.1f} s"
        else:  # an older record: the mean time between changes (``steady``)
            rule = f"changed at least every {STILL_S:g} s on average"
            still = f"changed every {1 / min(p['step_changes_per_s'] for p in trained):.1f} s or sooner on average"
        queued = f", {spc['queued']} more waiting in line" if spc["queued"] else ""
        if n == max(r["sessions"] for r in record["rows"]):
            queued += " (the largest N measured: the capacity may be higher)"
        lines.append(f"**Capacity: {spc['per_core']:.1f} students per core**: {spc['training']} students training "
                     f"at once{queued} on {where}, each kept ≥ {GOAL_REDRAWS:g} redraw/s and a Step counter that "
                     f"{rule} (`{source}`, {date}).")
        cli = record.get("cli") or {}
        vs_cli = (f", against {cli['cli_steps_per_s']:.0f} for one headless `python -m flowlab train` of the same "
                  "settings" if cli.get("cli_steps_per_s") else "")
        train, pause = r.get("train_click_s") or {}, r.get("pause_click_s") or {}
        lines.append(f"At N = {n}, per student: {min(steps):.0f}–{statistics.median(steps):.0f} steps/s (worst–"
                     f"median; {sum(steps):.0f} for all{vs_cli}), "
                     f"{min(redraws):.1f}–{statistics.median(redraws):.1f} "
                     f"redraws/s, the Step shown {still}; the first step {_f(r.get('admitted_first_step_s_median'), 1)}"
                     f" s after pressing Train (worst {_f(r.get('admitted_first_step_s_worst'), 1)} s); Train answered "
                     f"in {_f(train.get('p95'), 2)} s and Pause in {_f(pause.get('p95'), 2)} s (p95).")
        rss = r.get("server_rss_mb") or {}
        if rss:
            lines.append(f"Server memory: {rss['before']:.0f} MB before the students, {rss['peak']:.0f} MB at peak "
                         f"with {n}: {r['server_rss_per_session_mb']:.0f} MB per student.  Server CPU "
                         f"{_f(r.get('server_cpu_cores'), 2)} cores while the machine's busy cores were "
                         f"{_f(r.get('machine_busy_cores'), 2)} of its {_cores(machine)}.")
    over = [r for r in record["rows"] if r["sessions"] > spc["students"] and not served(r)]
    if over:
        lines.append(_beyond(min(over, key=lambda r: r["sessions"])))
    start, end = record.get("load_average_start"), record.get("load_average_end")
    if start and end:
        around = ""
        if spc["students"]:
            r = _row(record, spc["students"])
            around = f" ({r['load_average_before'][0]:g} and {r['load_average_after'][0]:g} around N = {r['sessions']})"
        lines.append(f"Machine load during the run (1-minute load average on {_cores(machine)}): {start[0]:g} at the "
                     f"start, {end[0]:g} at the end{around}; the clients ran on the same machine."
                     + (f" Note recorded with it: {record['note'].rstrip('.')}." if record.get("note") else ""))
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--sessions", default="1,5,10,20,40", help="comma-separated N (students at once)")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds watched after the click, per N")
    ap.add_argument("--query", default="", help="the Playground's URL query (default: its defaults)")
    ap.add_argument("--url", help="an already running server or proxy (else one is started here, per N)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its CPU and RSS")
    ap.add_argument("--replicas", type=int, help="start K replicas behind nginx (deploy/run_local.py), per N")
    ap.add_argument("--train-slots", type=int, help="FLOWLAB_TRAIN_SLOTS of the server(s) started here")
    ap.add_argument("--max-trainers", type=int, help="FLOWLAB_MAX_TRAINERS of the server(s) started here")
    ap.add_argument("--jax-cache", help="compile cache folder of the server(s) started here (default: a new one)")
    ap.add_argument("--cli-seconds", type=float, default=30.0, help="headless CLI run for the ratio (0: none)")
    ap.add_argument("--load-timeout", type=float, default=180.0, help="seconds for every page to load")
    ap.add_argument("--start-timeout", type=float, default=180.0,
                    help="seconds after the click for every page to show a step or its place in line (compiles)")
    ap.add_argument("--out", help="append the result here (flowlab.system.write_result), e.g. "
                                  "assets/benchmarks/capacity_cpu.jsonl")
    ap.add_argument("--note", default="", help="a sentence stored with the result (what else ran on the machine)")
    ap.add_argument("--summary", metavar="RESULT", help="only print the README lines of RESULT's last record")
    a = ap.parse_args(argv)
    if a.summary:
        from flowlab.system import read_results  # noqa: PLC0415  (imports JAX: only when asked)

        records = [r for r in read_results(a.summary) if r.get("benchmark") == "capacity"]
        if not records:
            ap.error(f"no capacity record in {a.summary}")
        print("\n".join(summary_lines(records[-1], a.summary)))
        return
    ns = [int(x) for x in a.sessions.split(",") if x.strip()]
    if a.url and a.replicas:
        ap.error("--url and --replicas exclude each other")
    load_start = loadavg()
    cli = None
    if a.cli_seconds > 0:
        print(f"headless CLI rate ({a.cli_seconds:.0f} s) ...", flush=True)
        cli = cli_rate(a.query, a.cli_seconds)
        print(json.dumps(cli), flush=True)
    own_cache = a.jax_cache is None
    cache = a.jax_cache or tempfile.mkdtemp(prefix="flowlab_capacity_cache_")
    log_dir = tempfile.mkdtemp(prefix="flowlab_capacity_logs_")
    target = Target(a, cache, log_dir)
    rows = []
    try:
        for n in ns:
            target.start(f"n{n}")
            try:
                warm = StreamlitClient(target.url, page=PAGE, query=a.query, name="warm-up")
                asyncio.run(_warm_up(warm, a.load_timeout))  # the server's first page load imports JAX etc.
                row = asyncio.run(round_n(target.url, n, a.query, a.seconds, target.probe, a.load_timeout,
                                          a.start_timeout))
            finally:
                target.stop()
            row["target"] = target.kind if not a.replicas else f"{a.replicas} replicas behind nginx"
            if cli:
                row["cli_steps_per_s"] = cli["cli_steps_per_s"]
                row["median_over_cli"] = (row["steps_per_s_median"] or 0) / cli["cli_steps_per_s"]
                row["sum_over_cli"] = row["steps_per_s_sum"] / cli["cli_steps_per_s"]
            rows.append(row)
            brief = {k: v for k, v in row.items() if k != "per_session"}
            print(json.dumps(brief, default=str), flush=True)
    finally:
        target.stop()
        if own_cache:
            shutil.rmtree(cache, ignore_errors=True)
    cores = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    spc = students_per_core(rows, cores)
    print_table(rows, cli)
    record = {"benchmark": "capacity", "method": "websocket clients (benchmarks/stclient.py)",
              "query": a.query or "(defaults)", "seconds": a.seconds, "sessions": ns,
              "target": rows[0]["target"] if rows else None, "replicas": a.replicas, "train_slots": a.train_slots,
              "max_trainers": a.max_trainers, "cli": cli, "students_per_core": spc, "load_average_start": load_start,
              "load_average_end": loadavg(), "note": a.note, "rows": rows}
    if a.out:
        from flowlab.system import read_results, write_result  # noqa: PLC0415  (imports JAX: only at the end)

        write_result(a.out, record)
        record = read_results(a.out)[-1]  # as written, with the machine's stamp
        print(f"wrote {a.out}")
    print("\n".join(summary_lines(record, a.out or "(not written)")))
    shutil.rmtree(log_dir, ignore_errors=True)


async def _warm_up(client: StreamlitClient, timeout: float):
    """One page load (the server's first imports JAX and the app) and one Step (one chunk of the settings
    compiles into the shared cache), not counted."""
    await client.connect()
    ok = await client.wait_for(_loaded, timeout)
    if ok and not client.state.exceptions:
        t = await client.click(key="pg_step_btn")
        ok = await client.wait_for(lambda s: any(r.t >= t and r.value > 0 for r in s.redraws[-2:]), timeout)
    await client.close()
    if client.state.exceptions:
        raise RuntimeError(f"the page raised an exception: {client.state.exceptions[0]}")
    if not ok:
        raise RuntimeError(f"the warm-up page load did not finish: {client.error or 'timeout'}")


if __name__ == "__main__":
    main()
