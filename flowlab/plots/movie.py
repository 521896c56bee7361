"""A training run as an animated GIF, made by FlowLab itself: the learned density after step 0 and at steps spaced
geometrically up to the end (early steps change the picture most), next to the true density.  The home page shows
one (``python -m flowlab figure movie``); its caption is built from the run's own record."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .. import presets
from ..densities import get_density
from ..layerviz.grids import plane_grid
from ..train import build_trainer
from .gif import density_gif
from .raster import density_zmax

CHUNK = 100  # optimiser steps per jitted chunk; every frame falls on a chunk end
STEPS, FRAMES = 30_000, 30  # the home page's movie: the run's length and its frames (step 0 included)
MAX_STEPS, MAX_FRAMES = 200_000, 60  # 60 frames of 64 × 130 cells at scale 4 stay well under the GIF's 5 MB


def frame_steps(steps: int, frames: int, chunk: int = CHUNK) -> list[int]:
    """``frames`` − 1 chunk ends from the first chunk to ``steps``, geometrically spaced, without repeats."""
    ends = np.geomspace(chunk, max(steps, chunk), max(2, frames - 1))
    return sorted({int(round(e / chunk)) * chunk for e in ends})


def movie_settings(density: str = "moons", steps: int = STEPS, method: str | None = None, **settings) -> dict:
    """The training settings of a movie: ``density``'s tuned preset with its cosine decay ending with the run (the
    warm-up at most a fifth of it), then ``settings``."""
    s = presets.tuned(get_density(density).name, method).settings()
    return {**s, "decay": steps, "warmup": min(s["warmup"], steps // 5), **settings}


def training_movie(density: str = "moons", steps: int = STEPS, frames: int = FRAMES, seed: int = 0, n: int = 64,
                   method: str | None = None, **settings) -> tuple[bytes, dict]:
    """(GIF bytes, record) of a flow learning ``density`` with ``movie_settings``: the learned density at step 0 and
    at ``frame_steps``, each frame beside the true density, on one fixed colour scale.  The record holds what the
    home page's caption says (label, layers, method, steps, frames, the final KL) and the steps of the frames."""
    d = get_density(density)
    s = movie_settings(density, steps, method, **settings)
    trainer = build_trainer(d.name, seed=seed, chunk=CHUNK, **s)
    _, _, pts = plane_grid(d.plot_range, n)
    truth = np.asarray(d.log_prob(pts.astype(np.float32)), np.float64).reshape(n, n)
    gap = np.full((n, 2), -np.inf)

    def frame():
        lp = np.asarray(trainer.log_prob(pts), np.float64).reshape(n, n)
        return trainer.step, np.concatenate([truth, gap, lp], axis=1)

    shots = [frame()]
    for stop in frame_steps(steps, frames):
        trainer.train(steps=stop)
        shots.append(frame())
        if trainer.stopped:
            break
    gif = density_gif(shots, density_zmax(d), title=f"true density | learned · {d.label}", scale=4)
    shown = Image.open(io.BytesIO(gif)).n_frames  # the GIF drops frames evenly if it would pass 5 MB
    record = {"density": d.name, "label": d.label, "method": s["method"], "layers": int(s["layers"]),
              "seed": seed, "steps": trainer.step, "frames": shown,
              "frame_steps": [int(t) for t, _ in shots] if shown == len(shots) else None,
              "kl": float(trainer.evals["kl"][-1]), "seconds": round(trainer.elapsed, 1),
              "diverged": [x.message for x in trainer.divergences]}
    return gif, record
