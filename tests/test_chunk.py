"""flowlab.chunk: the chunk length model and clipping with learned activation parameters (the jitted chunk itself is
exercised through the Trainer in test_train)."""
import jax.numpy as jnp
import numpy as np

from flowlab.activations import make_activation
from flowlab.chunk import (CHUNK_CHOICES, HEADLESS_CHUNK_SCALE, TrainConfig, chunk_steps_for, init_state, make_chunk,
                           make_hyper)
from flowlab.flow import FlowSpec, Norm
from flowlab.train import build_trainer


def test_chunk_steps_scale_with_work():
    base = chunk_steps_for(20, 256, "relative")
    assert base in CHUNK_CHOICES
    assert chunk_steps_for(200, 256, "relative") < base  # 10x the work -> shorter chunks
    assert chunk_steps_for(2, 16, "relative") == max(CHUNK_CHOICES)
    assert chunk_steps_for(200, 4096, "self_normalizing") == min(CHUNK_CHOICES)
    assert chunk_steps_for(20, 256, "self_normalizing") <= base
    assert chunk_steps_for(20, 256, "relative", activation="learned_steps") < base  # ~10x the work per step


def test_headless_runs_use_longer_chunks():
    assert chunk_steps_for(50, 256, "self_normalizing", HEADLESS_CHUNK_SCALE) == 200
    assert chunk_steps_for(200, 4096, "relative", HEADLESS_CHUNK_SCALE) < 50  # heavy: short chunks
    t = build_trainer("moons", layers=50, batch=256, method="self_normalizing", ntrain=500, ntest=50, headless=True)
    assert t.cfg.chunk == 200
    assert build_trainer("moons", layers=2, ntrain=500, ntest=50, chunk=7).cfg.chunk == 7  # an explicit length stands


def test_clipping_counts_the_learned_activation_parameters():
    """The global norm that clipping bounds includes A: one SGD step with a tiny threshold moves (W, b, A) together
    by exactly the threshold."""
    spec = FlowSpec(2, 3, make_activation("learned_steps"))
    cfg = TrainConfig("exact", batch=32, chunk=1, optimizer="sgd")
    state = init_state(spec, cfg, seed=0)
    data = jnp.asarray(np.random.default_rng(0).normal(size=(256, 2)) * 3, jnp.float32)
    out, _, m, _, _ = make_chunk(spec, cfg)(state, state, data, data[:10], jnp.full((10,), jnp.nan),
                                            Norm.identity(2), make_hyper(lr=1.0, clip=0.01, warmup=0, decay=0))
    moved = {k: float(jnp.sum((out.params[k] - state.params[k]) ** 2)) for k in ("W", "b", "A")}
    assert float(m["grad_norm"][0]) > 0.01 and moved["A"] > 0
    np.testing.assert_allclose(np.sqrt(sum(moved.values())), 0.01, rtol=1e-3)
