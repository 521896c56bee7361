"""Where an untrained deep flow starts: the pre-activation spread per layer with orthogonal W and the NLL before any
step, with orthogonal W and after ``flow.data_init`` (every pre-activation starts with mean 0 and variance 1 on a
batch of the data).  The figures behind the presets' choice of the data-dependent start on moons.

    python benchmarks/init_start.py [--density moons] [--layers 50] [--seeds 0 1 2 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from flowlab import gradients as G  # noqa: E402
from flowlab import presets  # noqa: E402
from flowlab.activations import make_activation  # noqa: E402
from flowlab.densities import get_density  # noqa: E402
from flowlab.flow import FlowSpec, Norm, data_init, forward, init_params  # noqa: E402


def start(density: str, layers: int, seed: int, n: int = 5000, batch: int | None = None) -> dict:
    """Pre-activation std per layer (mean over units) with orthogonal W, and the x-space NLL on held-out points of
    the orthogonal start and of the data-dependent start fitted on ``batch`` training points (the preset's batch)."""
    d = get_density(density)
    x = d.sample(n, seed=seed).astype(np.float32)
    xt = d.sample(n, seed=seed + 10_000).astype(np.float32)
    norm = Norm.fit(x)
    h, ht = norm.apply(jnp.asarray(x)), norm.apply(jnp.asarray(xt))
    spec = FlowSpec(2, int(layers), make_activation())
    p = init_params(spec, jax.random.PRNGKey(seed))
    std = np.asarray(jnp.mean(jnp.std(forward(spec, p, h).ys, axis=1), axis=-1))
    shift = -float(norm.logdet())  # x-space NLL = standardised NLL + Σ log scale
    pd = data_init(spec, p, h[: int(batch or presets.DEFAULT.batch)])
    return {"std": std, "nll_orthogonal": float(G.exact_nll(spec, p, ht)) + shift,
            "nll_data_init": float(G.exact_nll(spec, pd, ht)) + shift}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--density", default="moons")
    ap.add_argument("--layers", type=int, default=50)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    a = ap.parse_args(argv)
    for seed in a.seeds:
        r = start(a.density, a.layers, seed)
        s = r["std"]
        marks = ", ".join(f"layer {k}: {s[k - 1]:.1e}" for k in (1, 10, 20, 30, 40, a.layers) if k <= len(s))
        print(f"seed {seed}: orthogonal pre-activation std {marks}; held-out NLL at the start: orthogonal "
              f"{r['nll_orthogonal']:.2f}, data-dependent {r['nll_data_init']:.2f} nats")


if __name__ == "__main__":
    main()
