"""Playground redraws per second while training, seen from real browser sessions (headless Chromium).

Starts `streamlit run app.py` on a free port (or uses --url), opens N independent sessions (one browser context
each) on /playground at FlowLab's default settings, presses Train in all of them, lets them warm up (compile, first
chunks), then counts for --seconds how many times each page's step counter changed (= redraws that reached the
browser) and the training steps per second.  Prints one line per session and the mean.

    python benchmarks/redraws.py --sessions 1
    python benchmarks/redraws.py --sessions 10 --seconds 30

With ``--apptest`` no browser is used: N threads each drive the page through streamlit's AppTest (one full script
run = one redraw, the fragment included), which measures the server's side alone.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # AppTest runs the page in this process: it must find the flowlab package


def _start_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://localhost:{port}"
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("streamlit did not start")


def _step(page) -> int:
    m = page.locator('[data-testid="stMetric"]', has_text="Step").first
    try:
        return int(m.locator('[data-testid="stMetricValue"]').inner_text(timeout=2000).replace(",", ""))
    except Exception:
        return -1


def run_apptest(sessions: int, seconds: float, warmup: float, query: str):
    """Server-side redraws: each thread reruns the page (one training chunk + all figures per run)."""
    import threading
    from urllib.parse import parse_qsl

    from streamlit.testing.v1 import AppTest

    results = [None] * sessions
    barrier = threading.Barrier(sessions)

    def worker(i):
        at = AppTest.from_file(os.path.join(ROOT, "pages", "playground.py"), default_timeout=600)
        for k, v in parse_qsl(query):
            at.query_params[k] = v
        at.run()
        at.button(key="pg_train").click().run()
        t_end = time.time() + warmup
        while time.time() < t_end:
            at.run()
        barrier.wait()
        step0, n, t0 = at.session_state["pg_session"].step, 0, time.time()
        while time.time() - t0 < seconds:
            at.run()
            n += 1
        dt = time.time() - t0
        assert not at.exception, [e.value for e in at.exception]
        results[i] = {"session": i, "redraws_per_s": n / dt,
                      "steps_per_s": (at.session_state["pg_session"].step - step0) / dt}

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds of training before measuring")
    ap.add_argument("--url", default=None, help="use a running server instead of starting one")
    ap.add_argument("--query", default="", help="extra query string, e.g. 'density=sine&layers=50'")
    ap.add_argument("--apptest", action="store_true", help="no browser: AppTest sessions in threads")
    args = ap.parse_args(argv)
    if args.apptest:
        rows = run_apptest(args.sessions, args.seconds, args.warmup, args.query)
        for r in rows:
            print(json.dumps(r))
        _summary(rows, args, "apptest")
        return
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"needs Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    proc, url = (None, args.url) if args.url else _start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                        "--disable-background-networking"])
            pages = []
            for _ in range(args.sessions):
                page = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
                page.goto(f"{url}/playground?{args.query}")
                page.wait_for_selector('[data-testid="stMetric"]', timeout=120_000)
                pages.append(page)
            for page in pages:
                page.get_by_role("button", name=re.compile("Train")).click()
            time.sleep(args.warmup)
            last = [_step(pg) for pg in pages]
            start_steps = list(last)
            changes = [0] * len(pages)
            t0 = time.time()
            while time.time() - t0 < args.seconds:
                for i, pg in enumerate(pages):
                    s = _step(pg)
                    if s != last[i] and s >= 0:
                        changes[i] += 1
                        last[i] = s
                time.sleep(0.05)
            dt = time.time() - t0
            rows = []
            for i in range(len(pages)):
                rows.append({"session": i, "redraws_per_s": changes[i] / dt,
                             "steps_per_s": (last[i] - start_steps[i]) / dt})
                print(json.dumps(rows[-1]))
            browser.close()
        _summary(rows, args, "browser")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


def _summary(rows, args, mode):
    import jax

    d = jax.devices()[0]
    mean_r = sum(r["redraws_per_s"] for r in rows) / len(rows)
    mean_s = sum(r["steps_per_s"] for r in rows) / len(rows)
    print(json.dumps({"mode": mode, "sessions": args.sessions, "seconds": args.seconds,
                      "mean_redraws_per_s": round(mean_r, 2), "min_redraws_per_s": round(min(r["redraws_per_s"]
                      for r in rows), 2), "mean_steps_per_s": round(mean_s, 1),
                      "device": f"{d.platform} {d.device_kind}", "cpus": os.cpu_count(), "query": args.query}))


if __name__ == "__main__":
    main()
