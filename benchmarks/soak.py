"""Soak test of the live runtime: N Playground sessions in one process (what the server holds for N browsers) follow
random links — good ones, hostile ones, your-own-density ones — and press random buttons for M minutes, while the
process's memory, threads and live workers are sampled.  Nothing a link asks for may grow the server without bound.

    python benchmarks/soak.py --sessions 10 --minutes 10 --out assets/benchmarks/soak_cpu.jsonl

Each session, every few seconds, does one of: open a new link (parsed by the settings schema, so hostile values are
clamped or refused with notes), Train, Pause, Step, Reset, Best, change a hyper-parameter, or leave (its worker ends)
and a new browser arrives.  Printed every 30 s: RSS, Python threads, live workers, scheduler state; at the end the RSS
growth after the first minute (the figure that must stay bounded)."""
from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowlab.custom_densities import text_density  # noqa: E402
from flowlab.runtime.scheduler import default_scheduler  # noqa: E402
from flowlab.runtime.worker import live_workers, stop_all  # noqa: E402
from flowlab.session import PlaygroundSession  # noqa: E402
from flowlab.settings import PLAYGROUND  # noqa: E402
from flowlab.system import load_average, rss_bytes, write_result  # noqa: E402

HOSTILE = ("1e308", "-1", "nan", "inf", "", "x" * 5000, "[a](http://b.c)", "9" * 300)
GOOD = ({"density": "moons"}, {"density": "trimodal", "method": "self_normalizing"}, {"density": "sine", "layers": "20"},
        {"data": "text", "text": "FLOW"}, {"density": "rings", "batch": "4096", "layers": "200"},
        {"density": "two_spirals", "ntrain": "200000"})


def rss_mb() -> float:
    b = rss_bytes()
    return float("nan") if b is None else b / 2**20


def random_link(rng: random.Random) -> dict:
    q = dict(rng.choice(GOOD))
    for f in rng.sample(PLAYGROUND.fields, rng.randint(0, 4)):
        if f.query_key:
            q[f.query_key] = rng.choice(HOSTILE)
    return q


crashes: list[str] = []  # unexpected exceptions in the simulated browsers (goal: none)
errors: list[str] = []  # distinct error sentences the workers published


def browser(idx: int, stop: threading.Event, rng: random.Random, counts: dict):
    """One simulated browser: a session that follows links and presses buttons until ``stop``."""
    sess = PlaygroundSession()
    while not stop.is_set():
        action = rng.choices(("link", "train", "pause", "step", "reset", "best", "hyper", "leave"),
                             (3, 4, 1, 1, 1, 1, 1, 1))[0]
        counts[action] = counts.get(action, 0) + 1
        try:
            if action == "link":
                s, _notes = PLAYGROUND.parse_query(random_link(rng))
                custom = text_density(s["text"]) if s["source"] == "text" else None
                if s["source"] not in ("toy", "text"):
                    s["source"] = "toy"
                sess.update(s, custom=custom, data_id=f"text:{s['text']}" if custom else None)
            elif sess.settings is None:
                continue
            elif action == "train":
                sess.start()
            elif action == "pause":
                sess.pause()
            elif action == "step":
                sess.step_once()
            elif action == "reset":
                sess.reset()
            elif action == "best":
                sess.restore_best()
            elif action == "hyper":
                sess.update({**sess.settings, "lr": rng.choice((1e-4, 1e-3, 1e-2))}, sess.data, sess.data_id,
                            sess.custom)
            elif action == "leave":
                sess.close()
                sess = PlaygroundSession()
            snap = sess.snapshot()
            if snap.error and snap.error not in errors:  # a worker's one-sentence error (e.g. out of memory)
                errors.append(snap.error)
        except ValueError:
            counts["refused"] = counts.get("refused", 0) + 1
        except Exception as e:  # noqa: BLE001 - a crash: counted and named, the simulated browser goes on
            counts["crash"] = counts.get("crash", 0) + 1
            crashes.append(f"{action}: {type(e).__name__}: {str(e)[:200]}")
        stop.wait(rng.uniform(0.5, 4.0))
    sess.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    stop, counts = threading.Event(), {}
    threads = [threading.Thread(target=browser, args=(i, stop, random.Random(a.seed * 1000 + i), counts),
                                daemon=True) for i in range(a.sessions)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    samples = []
    while time.monotonic() - t0 < 60 * a.minutes:
        time.sleep(min(30.0, max(0.0, 60 * a.minutes - (time.monotonic() - t0))))
        st = default_scheduler().stats()
        samples.append({"t": round(time.monotonic() - t0), "rss_mb": round(rss_mb(), 1),
                        "threads": threading.active_count(), "workers": len(live_workers()), **st})
        print(samples[-1], flush=True)
    stop.set()
    for t in threads:
        t.join(30)
    deadline = time.monotonic() + 30  # a closed session's worker ends after its current chunk or build
    while live_workers() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = stop_all()  # workers still alive 30 s after every session closed (goal: none)
    after_first = [s["rss_mb"] for s in samples if s["t"] >= 60] or [samples[-1]["rss_mb"]]
    summary = {"sessions": a.sessions, "minutes": a.minutes, "actions": counts,
               "rss_mb_first": samples[0]["rss_mb"], "rss_mb_max": max(s["rss_mb"] for s in samples),
               "rss_growth_after_1min_mb": round(after_first[-1] - after_first[0], 1),
               "max_threads": max(s["threads"] for s in samples), "max_workers": max(s["workers"] for s in samples),
               "workers_alive_30s_after_close": left, "crashes": len(crashes), "crash_messages": crashes[:10],
               "worker_errors": errors[:10], "load_average": load_average()}
    print(summary)
    if a.out:
        write_result(a.out, {"benchmark": "soak", **summary, "samples": samples})


if __name__ == "__main__":
    main()
