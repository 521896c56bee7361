"""One jitted training chunk: K optimiser steps under ``lax.scan`` with per-step metrics and a divergence guard.

* ``TrainConfig`` holds the structural settings (method, batch size, chunk length, optimiser): one compiled chunk
  per (FlowSpec, TrainConfig, data shape), cached.  Learning rate, λ, clipping, schedule and Adam's β₂ are array
  hyper-parameters (``make_hyper``), so moving a slider never recompiles.
* A step samples a minibatch, takes the method's direction, clips the global norm, applies warm-up + cosine decay
  and one optax update.  A step whose loss or gradient is NaN/Inf, or whose loss exceeds ``explode``, is not
  applied: the parameters roll back to the last step with a finite loss, the rest of the chunk is frozen and the
  chunk reports the failing step.
* At the end of a chunk: exact test NLL (slogdet) and, when the true log-density of the test points is known,
  KL(p‖q) = mean_test[log p(x) − log q(x)].
* ``chunk_steps_for``: the chunk length from a cost model, so a chunk takes about the same time at any setting.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import gradients as G
from . import presets
from .activations import make_activation
from .flow import TRAINER_INITS, FlowSpec, data_init, init_params, log_prob, logdet_weights
from .metrics import all_finite, global_norm, inverse_error, tree_where

OPTIMIZERS = ("adam", "sgd")
# Self-normalizing flows: mean_k ||R_k W_k - I||_F above this means the learned inverses no longer track W (healthy
# runs stay near 1e-3 to 1e-2; runs that went bad passed 0.37 on their way to 30: assets/benchmarks/RESULTS.md).
INVERSE_DRIFT_WARN = 0.25


def divergence_threshold(dim: int) -> float:
    """A loss above 1000 + 100·D nats counts as diverged: far above any NLL a flow reaches on standardised data."""
    return 1000.0 + 100.0 * int(dim)


@dataclass(frozen=True)
class TrainConfig:
    """Structural training settings (changing one compiles a new chunk)."""

    method: str
    batch: int
    chunk: int
    optimizer: str = "adam"
    track_angle: bool = False  # learned inverses: gradients.snf_angle each step (costs an SNF and an exact gradient)

    def __post_init__(self):
        object.__setattr__(self, "method", G.check_method(self.method, G.TRAIN_METHODS))
        if self.track_angle and not G.REGISTRY[self.method].learned_inverse:
            raise ValueError(f"The angle to the exact gradient (Keller et al. Fig. 3) is tracked for methods with "
                             f"learned inverses; {G.REGISTRY[self.method].short} has none.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimiser {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}.")
        if int(self.batch) < 1:
            raise ValueError(f"Batch size must be a positive integer, got {self.batch}.")
        if int(self.chunk) < 1:
            raise ValueError(f"Chunk length must be a positive integer, got {self.chunk}.")


ADAM_B2 = presets.ADAM_B2
_D = presets.DEFAULT


def make_hyper(lr=_D.lr, lam=_D.lam, clip=_D.clip, warmup=_D.warmup, decay=_D.decay, final_lr_frac=0.05,
               explode=None, dim=2, b2=_D.b2):
    """Array hyper-parameters of a chunk (changing them does not recompile); defaults from ``presets.DEFAULT``.

    lr: peak learning rate; warmup: linear warm-up steps; decay: cosine decay from the end of warm-up to
    ``final_lr_frac * lr`` at step ``decay`` (0 = constant); clip: max global gradient norm (inf = off);
    lam: SNF reconstruction weight λ, Keller et al.'s (eq. 3; ``gradients._self_normalizing``); explode: a loss above this counts as divergence (default 1000 + 100 D nats);
    b2: Adam's second-moment decay v ← b2·v + (1 − b2)·g² (memory ~1/(1 − b2) steps; ignored by SGD).
    """
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"Learning rate must be a positive number, got {lr}.")
    if not (0 < b2 < 1):
        raise ValueError(f"Adam's β₂ must lie strictly between 0 and 1, got {b2}.")
    if not (clip > 0):
        raise ValueError(f"Gradient clipping threshold must be positive (use inf to disable), got {clip}.")
    if lam < 0:
        raise ValueError(f"Reconstruction weight λ must be non-negative, got {lam}.")
    explode = divergence_threshold(dim) if explode is None else explode
    vals = dict(lr=lr, lam=lam, clip=clip, warmup=warmup, decay=decay, final_lr_frac=final_lr_frac,
                explode=explode, b2=b2)
    return {k: jnp.asarray(v, jnp.float32) for k, v in vals.items()}


def lr_at(hyper, step):
    """Learning rate at optimiser step ``step``: linear warm-up, then cosine decay (if decay > 0)."""
    step = jnp.asarray(step, jnp.float32)
    warm = jnp.where(hyper["warmup"] > 0, jnp.minimum(1.0, (step + 1.0) / jnp.maximum(hyper["warmup"], 1.0)), 1.0)
    span = jnp.maximum(hyper["decay"] - hyper["warmup"], 1.0)
    prog = jnp.clip((step - hyper["warmup"]) / span, 0.0, 1.0)
    cos = hyper["final_lr_frac"] + (1 - hyper["final_lr_frac"]) * 0.5 * (1 + jnp.cos(math.pi * prog))
    return hyper["lr"] * warm * jnp.where(hyper["decay"] > 0, cos, 1.0)


def _optimizer(name):
    if name == "adam":  # learning rate and b2 are set from ``hyper`` at every step
        return optax.inject_hyperparams(optax.adam)(learning_rate=1e-3, b2=ADAM_B2)
    return optax.inject_hyperparams(optax.sgd)(learning_rate=1e-3)


class TrainState(NamedTuple):
    params: dict
    opt_state: optax.OptState
    step: jax.Array  # optimiser steps applied so far
    key: jax.Array


DATA_INIT_POINTS = 4096


def init_state(spec: FlowSpec, cfg: TrainConfig, seed: int = 0, init: str | None = None, noise: float = 0.01,
               params: dict | None = None, data=None) -> TrainState:
    """Fresh state.  Same seed -> same initial weights.  ``init``: ``orthogonal`` (the default here) W with
    |det W| = 1, b = 0, and for SNF R = W^T, which is then exactly W^{-1}; ``data`` the same
    rotations rescaled by ``flow.data_init`` on the first ``DATA_INIT_POINTS`` rows of ``data`` (standardised
    training points) so that every pre-activation starts with mean 0 and variance 1; ``identity_noise`` Keller
    App. A.3's W = I + noise.  Methods with learned inverses (``Method.learned_inverse``) get R = W⁻¹."""
    key = jax.random.PRNGKey(int(seed))
    k_init, k_train = jax.random.split(key)
    if params is None:
        init = init or "orthogonal"
        if init not in TRAINER_INITS:
            raise ValueError(f"Unknown initialisation {init!r}; choose one of {', '.join(TRAINER_INITS)}.")
        with_R = G.REGISTRY[cfg.method].learned_inverse
        if init == "data":
            if data is None:
                raise ValueError("The data-dependent initialisation needs the (standardised) training data.")
            params = init_params(spec, k_init, init="orthogonal", with_R=with_R)
            params = data_init(spec, params, data[:DATA_INIT_POINTS])
        else:
            params = init_params(spec, k_init, init=init, noise=noise, with_R=with_R)
    opt = _optimizer(cfg.optimizer)
    return TrainState(params, opt.init(params), jnp.zeros((), jnp.int32), k_train)


@lru_cache(maxsize=64)
def make_chunk(spec: FlowSpec, cfg: TrainConfig):
    """Jitted ``chunk(state, prev, data, test_x, test_logp, norm, hyper) -> (state, prev, step_metrics, evals,
    status)``; ``prev`` is the state one step before ``state`` (the rollback target), carried across chunks.

    ``data`` (N, D) and ``test_x`` are standardised; ``test_logp`` is log p(x) of the raw test points (NaN where
    unknown).  ``norm`` only enters the reported x-space NLL (its log-det is a constant)."""
    grad_fn = G.make_grad_fn(cfg.method, spec)
    opt = _optimizer(cfg.optimizer)
    B, K = int(cfg.batch), int(cfg.chunk)
    # the gradient norm that clipping bounds (R's gradient is scaled along with it but not counted)
    norm_keys = ("W", "b", "A") if spec.activation.learnable else ("W", "b")

    def chunk(state, prev, data, test_x, test_logp, norm, hyper):
        shift_nll = -norm.logdet()  # x-space NLL = standardised NLL + sum(log scale)

        def one_step(carry, _):
            state, prev, ok, bad_step, loss_bad = carry
            key, k_batch = jax.random.split(state.key)
            batch = data[jax.random.randint(k_batch, (B,), 0, data.shape[0])]
            grads, m = grad_fn(state.params, batch, hyper)
            loss = m["data_loss"] - jnp.sum(logdet_weights(state.params))
            gnorm = global_norm({k: grads[k] for k in norm_keys})
            scale = jnp.minimum(1.0, hyper["clip"] / (gnorm + 1e-12))
            grads = jax.tree_util.tree_map(lambda g: g * scale, grads)
            lr = lr_at(hyper, state.step)
            hp = {**state.opt_state.hyperparams, "learning_rate": lr}
            if "b2" in hp:
                hp["b2"] = hyper["b2"]
            opt_state = state.opt_state._replace(hyperparams=hp)
            updates, new_opt = opt.update(grads, opt_state, state.params)
            new_params = optax.apply_updates(state.params, updates)
            loss_ok = jnp.isfinite(loss) & (loss < hyper["explode"])
            good = ok & loss_ok & all_finite(grads) & all_finite(new_params)
            newly_bad = ok & ~good
            # A bad loss means the current parameters are bad: go back one step.  A bad gradient/update on a
            # finite loss: keep the current parameters, drop the update.  After a failure the chunk stays frozen.
            fallback = tree_where(loss_ok, state, prev)
            nxt = tree_where(good, TrainState(new_params, new_opt, state.step + 1, key),
                             tree_where(newly_bad, fallback, state))
            new_prev = tree_where(good, state, tree_where(newly_bad, fallback, prev))
            bad_step = jnp.where(newly_bad, state.step, bad_step)
            loss_bad = jnp.where(newly_bad, ~loss_ok, loss_bad)
            metrics = {"loss": loss + shift_nll, "grad_norm": gnorm, "lr": lr}
            if cfg.method == "self_normalizing":
                metrics["recon"] = m["recon"]
            if cfg.track_angle:
                metrics["angle"] = G.snf_angle(spec, state.params, batch)
            return (nxt, new_prev, ok & good, bad_step, loss_bad), metrics

        carry0 = (state, prev, jnp.asarray(True), jnp.asarray(-1, jnp.int32), jnp.asarray(False))
        (state_out, prev_out, ok, bad_step, loss_bad), metrics = jax.lax.scan(one_step, carry0, None, length=K)
        lq = log_prob(spec, state_out.params, test_x) + norm.logdet()
        test_nll = -jnp.mean(lq)
        kl = jnp.mean(test_logp - lq)
        evals = {"test_nll": test_nll, "kl": kl}
        if cfg.method == "self_normalizing":  # mean_k ||R_k W_k - I||_F: an O(L D^3) product, so once per chunk
            evals["inv_err"] = inverse_error(state_out.params["R"], state_out.params["W"])
        status = {"ok": ok, "bad_step": bad_step, "loss_bad": loss_bad}
        return state_out, prev_out, metrics, evals, status

    return jax.jit(chunk)


CHUNK_CHOICES = (5, 10, 25, 50, 100, 200)
_BATCH_OVERHEAD = 300
_REF_WORK = 20 * (256 + _BATCH_OVERHEAD)
_REF_STEPS = 500
_METHOD_COST = {"exact": 1.0, "relative": 1.0, "self_normalizing": 1.5}
HEADLESS_CHUNK_SCALE = 4.0  # headless runs (CLI, quality benchmark): 4x the Playground's work per chunk


def chunk_steps_for(layers: int, batch: int, method: str, scale: float = 1.0, activation: str | None = None) -> int:
    """Steps per jitted chunk: about the work of ``scale`` × 500 steps at 20 layers × batch 256 with a fixed
    activation, at most 200."""
    work = (max(1, int(layers)) * (max(1, int(batch)) + _BATCH_OVERHEAD) * _METHOD_COST.get(method, 1.0)
            * (make_activation(activation).step_cost if activation else 1.0))
    target = scale * _REF_STEPS * _REF_WORK / work
    return max(c for c in CHUNK_CHOICES if c <= max(target, CHUNK_CHOICES[0]))
