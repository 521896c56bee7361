"""The live Playground as a browser sees it: steps per second, redraws per second and KL(p‖q) against wall time.

Starts `streamlit run app.py` on a free port with an empty compilation cache (a cold start), opens the Playground in
headless Chromium, presses Train and then reads the page 20 times a second (5 times with several sessions): the step counter (a change = a redraw
that reached the browser), and the KL shown.  Reports the true steps/s (step counter over wall time), redraws/s and
the KL at 10, 20, 30, 40 and 60 s after the click.  With ``--cli`` it also trains the same settings headless
(`python -m flowlab train`) for the same time and prints the ratio of the two rates.

    python benchmarks/redraws.py                              # default moons, relative gradient, 60 s
    python benchmarks/redraws.py --query "density=sine&method=self_normalizing" --seconds 60 --cli
    python benchmarks/redraws.py --table --seconds 60          # every density x {relative, self-normalizing}
    python benchmarks/redraws.py --sessions 10 --seconds 60    # ten browser sessions at once
    python benchmarks/redraws.py --sessions 10 --apptest --cli # ten sessions driven server side (no browsers)
    python benchmarks/redraws.py --table --json assets/benchmarks/playground_browser_cpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowlab.densities import REGISTRY  # noqa: E402
from flowlab.settings import PLAYGROUND  # noqa: E402
from flowlab.system import write_result  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MARKS = (10, 20, 30, 40, 60)


def start_server(cache_dir: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "FLOWLAB_JAX_CACHE": cache_dir}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://localhost:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("streamlit did not start")


JS_READ = """() => {
  const out = {};
  for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
    const l = m.querySelector('[data-testid="stMetricLabel"]'), v = m.querySelector('[data-testid="stMetricValue"]');
    if (l && v) out[l.innerText.trim()] = v.innerText.trim();
  }
  return out;
}"""


def _num(text):
    try:
        return float(str(text).replace(",", ""))
    except (TypeError, ValueError):
        return float("nan")


def watch(pages, seconds: float) -> list:
    """Press Train on every page, then read all of them every 50 ms for ``seconds``; one trace per page."""
    for page in pages:
        page.get_by_role("button", name=re.compile("Train")).click()
    t0 = time.time()
    traces = [[] for _ in pages]
    while time.time() - t0 < seconds:
        for i, page in enumerate(pages):
            try:
                m = page.evaluate(JS_READ)
            except Exception:  # noqa: BLE001 - a page in the middle of a redraw
                continue
            traces[i].append((time.time() - t0, _num(m.get("Step")), _num(m.get("KL(p‖q)"))))
        time.sleep(0.05 if len(pages) == 1 else 0.2)
    return traces


def summarise(trace, seconds: float, warmup: float = 10.0) -> dict:
    """Steps/s and redraws/s over [warmup, end] of one trace, and the KL shown at the marks."""
    t = [r[0] for r in trace]
    steps = [r[1] for r in trace]
    changes = [r for k, r in enumerate(trace[1:], 1) if r[1] != trace[k - 1][1] and r[1] == r[1]]
    late = [r for r in trace if r[0] >= warmup and r[1] == r[1]]
    out = {"seconds": seconds, "steps_final": steps[-1] if steps else None}
    if len(late) >= 2 and late[-1][0] > late[0][0]:
        out["steps_per_s"] = (late[-1][1] - late[0][1]) / (late[-1][0] - late[0][0])
        out["redraws_per_s"] = sum(1 for r in changes if r[0] >= warmup) / (late[-1][0] - late[0][0])
    first = next((r[0] for r in trace if r[1] and r[1] > 0), None)
    out["first_step_s"] = first
    for mark in MARKS:
        if mark <= seconds:
            before = [r for r in trace if r[0] <= mark and r[2] == r[2]]
            out[f"kl_{mark}s"] = before[-1][2] if before else None
    return out


def browser_run(url: str, queries: list, seconds: float, viewport=(1440, 900)) -> list:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415  (benchmark-only dependency)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                    "--disable-background-networking"])
        pages = []
        for q in queries:
            ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            page = ctx.new_page()
            page.goto(f"{url}/playground?{q}")
            page.wait_for_selector('[data-testid="stMetric"]', timeout=180_000)
            pages.append(page)
        time.sleep(1.0)
        traces = watch(pages, seconds)
        for page in pages:
            page.get_by_role("button", name=re.compile("Pause")).click()
        browser.close()
    return traces


def apptest_run(queries: list, seconds: float) -> list:
    """Sessions without a browser: one thread per session drives the page through Streamlit's AppTest, rerunning it
    at the page's own redraw interval (one full script run = one redraw), and records the step shown."""
    import threading  # noqa: PLC0415

    from streamlit.testing.v1 import AppTest  # noqa: PLC0415  (benchmark-only)

    traces = [[] for _ in queries]
    ready = threading.Barrier(len(queries) + 1)

    def drive(i, q):
        at = AppTest.from_file(str(ROOT / "pages" / "playground.py"), default_timeout=600)
        for k, v in (kv.split("=", 1) for kv in q.split("&") if "=" in kv):
            at.query_params[k] = v
        at.run()
        ready.wait()
        t0 = time.time()
        at.button(key="pg_train").click().run()
        while time.time() - t0 < seconds:
            sess = at.session_state["pg_session"]
            time.sleep(sess.redraw_interval())
            at.run()
            m = {x.label: x.value for x in at.metric}
            traces[i].append((time.time() - t0, _num(m.get("Step")), _num(m.get("KL(p‖q)"))))
        at.session_state["pg_session"].close()

    threads = [threading.Thread(target=drive, args=(i, q)) for i, q in enumerate(queries)]
    for t in threads:
        t.start()
    ready.wait()
    for t in threads:
        t.join()
    return traces


def cli_rate(query: str, seconds: float) -> dict:
    """The same settings trained headless for ``seconds``: steps per second of training time."""
    s, _ = PLAYGROUND.parse_query(dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv))
    out = tempfile.mkdtemp(prefix="flowlab_cli_")
    args = [sys.executable, "-m", "flowlab", "train", "--density", s["density"], "--budget", str(seconds),
            "--fixed-schedule", "--keep-last", "--quiet", "--out", out]
    for k in ("method", "layers", "batch", "lr", "b2", "init", "lam", "warmup", "decay", "seed", "ntrain", "clip"):
        args += [f"--{k}", str(s[k])]
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    m = json.loads(Path(out, "metrics.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    return {"cli_steps": m["steps"], "cli_train_seconds": m["train_seconds"],
            "cli_steps_per_s": m["steps"] / m["train_seconds"], "cli_kl": m["kl"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--query", default="", help="the Playground's URL query, e.g. 'density=sine&method=exact'")
    ap.add_argument("--seconds", type=float, default=60.0, help="wall time after pressing Train")
    ap.add_argument("--sessions", type=int, default=1, help="browser sessions training at once")
    ap.add_argument("--table", action="store_true", help="every density with the relative and SNF gradients")
    ap.add_argument("--cli", action="store_true", help="also train headless for the same time and compare rates")
    ap.add_argument("--viewport", default="1440x900")
    ap.add_argument("--apptest", action="store_true",
                    help="no browser: each session is a thread driving the page through AppTest (server side only)")
    ap.add_argument("--json", default=None, help="write the results here (flowlab.system.write_result)")
    a = ap.parse_args(argv)
    vp = tuple(int(v) for v in a.viewport.split("x"))
    if a.table:
        plan = [f"density={d}&method={m}" for d in REGISTRY for m in ("relative", "self_normalizing")]
    else:
        plan = [a.query]
    rows = []
    for q in plan:
        if a.apptest:
            traces = apptest_run([q] * a.sessions, a.seconds)
        else:
            cache = tempfile.mkdtemp(prefix="flowlab_bench_cache_")  # cold start: compile time counts
            proc, url = start_server(cache)
            try:
                traces = browser_run(url, [q] * a.sessions, a.seconds, vp)
            finally:
                proc.terminate()
                proc.wait(timeout=20)
                shutil.rmtree(cache, ignore_errors=True)
        per = [summarise(tr, a.seconds) for tr in traces]
        row = {"query": q or "(defaults)", "sessions": a.sessions, "mode": "apptest" if a.apptest else "browser",
               "per_session": per}
        if a.sessions > 1:
            row["sum_steps_per_s"] = sum(p.get("steps_per_s", 0.0) for p in per)
            row["min_redraws_per_s"] = min(p.get("redraws_per_s", 0.0) for p in per)
        if a.cli:
            row.update(cli_rate(q, min(a.seconds, 30.0)))
            base = row["sum_steps_per_s"] if a.sessions > 1 else per[0].get("steps_per_s", float("nan"))
            row["browser_over_cli"] = base / row["cli_steps_per_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    if a.json:
        write_result(a.json, {"benchmark": "playground_browser", "seconds": a.seconds, "viewport": a.viewport,
                              "rows": rows})
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
