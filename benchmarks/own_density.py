"""What a flow learns of a density the user makes: the KL(p‖q) the command line reaches in a time budget (60 s by
default, one core per run, two runs at a time) on typed texts and a picture, each against its exact raster
density.  The Playground states its limits from these records (``custom_densities.measured_limits``).

    python benchmarks/own_density.py --out assets/benchmarks/own_density_cpu.jsonl
    python benchmarks/own_density.py --texts FLOW --methods relative --seeds 0 --budget 10   # a quick check

Each run is ``python -m flowlab train --text ... | --image ... --budget B --seed S --method M`` in its own process
(single-threaded XLA); its metrics.json gives the steps, held-out NLL and the KL; the learned density's PNG is kept
next to the records (``--pictures``) for the closing note of what the flow gets wrong."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXTS = ("FLOW", "Hi", "ICML")
PICTURE = "smiley"  # drawn below with Pillow: a ring, two eyes and a smile, dark on white


def smiley_png(path: Path, side: int = 128) -> Path:
    """A deterministic test picture: dark strokes (a face) on a white background."""
    from PIL import Image, ImageDraw  # noqa: PLC0415

    im = Image.new("L", (side, side), 255)
    d = ImageDraw.Draw(im)
    s = side / 128
    d.ellipse([8 * s, 8 * s, 120 * s, 120 * s], outline=0, width=round(8 * s))
    d.ellipse([38 * s, 38 * s, 52 * s, 56 * s], fill=0)
    d.ellipse([76 * s, 38 * s, 90 * s, 56 * s], fill=0)
    d.arc([34 * s, 50 * s, 94 * s, 98 * s], 20, 160, fill=0, width=round(7 * s))
    im.save(path)
    return path


def run(source: list, method: str, seed: int, budget: float, keep: Path | None, tag: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "flowlab", "train", *source, "--method", method, "--seed", str(seed),
               "--budget", str(budget), "--out", out, "--quiet"]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        if r.returncode != 0 or not (Path(out) / "metrics.json").exists():
            return {"source": tag, "method": method, "seed": seed, "error": (r.stderr or r.stdout)[-300:]}
        m = json.loads((Path(out) / "metrics.json").read_text())
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            name = f"{tag.replace(':', '-')}_{method}_s{seed}.png"
            (keep / name).write_bytes((Path(out) / "density.png").read_bytes())
    return {"source": tag, "label": m["label"], "method": method, "seed": seed, "budget_s": budget,
            "steps": m["steps"], "kl": round(m["kl"], 4), "test_nll": round(m["test_nll"], 4),
            "entropy": round(m["entropy"], 4), "diverged": m["diverged"], "layers": m["settings"]["layers"],
            "settings": m["settings"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", nargs="*", default=list(TEXTS))
    ap.add_argument("--picture", action=argparse.BooleanOptionalAction, default=True,
                    help="also learn the test picture (a smiley)")
    ap.add_argument("--methods", nargs="+", default=["relative", "self_normalizing"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--out", default=None, help="append one line per run here (flowlab.system.write_result)")
    ap.add_argument("--pictures", default=None, help="keep each learned density's PNG in this folder")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="flowlab-own-"))
    sources = [(["--text", t], f"text:{t}") for t in a.texts]
    if a.picture:
        sources.append((["--image", str(smiley_png(tmp / "smiley.png"))], f"picture:{PICTURE}"))
    jobs = [(src, m, s, tag) for src, tag in sources for m in a.methods for s in a.seeds]
    keep = Path(a.pictures) if a.pictures else None
    with ThreadPoolExecutor(max_workers=2) as ex:
        rows = list(ex.map(lambda j: run(j[0], j[1], j[2], a.budget, keep, j[3]), jobs))
    from flowlab.system import load_average, write_result  # noqa: PLC0415  (imports JAX: after the children ran)

    load = load_average()
    print(f"{'source':16s} {'method':17s} seed  steps     KL    (load average {load})")
    for r in rows:
        if "error" in r:
            print(f"{r['source']:16s} {r['method']:17s} {r['seed']:4d}  error: {r['error']}")
        else:
            print(f"{r['source']:16s} {r['method']:17s} {r['seed']:4d} {r['steps']:6d} {r['kl']:7.3f}"
                  f"{'  diverged' if r['diverged'] else ''}")
        if a.out:
            write_result(a.out, {"benchmark": "own_density", **r, "load_average_after": load})


if __name__ == "__main__":
    main()
