"""Lesson 6 — linear flows reach a closed-form optimum (Liao & He App. A.1–A.2, eq. 21, the PPCA case of their
§2.1.2 eq. 6; formulas in ``flowlab.theory``):
train a one-layer FC flow (an affine map z = W x + b: the last layer has no activation) and watch its NLL reach
½ log det(2πe Σ), with W Σ Wᵀ → I and E‖z‖² → d."""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .. import presets, theory
from ..densities import get_density
from ..train import Trainer, build_trainer

LINEAR_DATA = ("correlated_gaussian", "banana")
LINEAR_DATA_LABELS = {"correlated_gaussian": "correlated Gaussian", "banana": "banana"}
# The lesson's trainer: one affine layer on raw (unstandardised) data, Adam with a cosine decay over the run, no
# warm-up, orthogonal start, Adam's default β₂ (the lesson is about the optimum, not about tuning).
LINEAR_SETTINGS = {k: v for k, v in presets.LINEAR_LESSON.settings().items()
                   if k not in ("lr", "batch", "method", "decay")}  # those are the lesson's widgets


def linear_lesson_data(name: str = "correlated_gaussian", n: int = 6000, seed: int = 0):
    """(x, exact entropy H(p) in nats) for the linear-flow lesson."""
    if name == "correlated_gaussian":
        x, _, cov = theory.correlated_gaussian(n, seed=seed)
        return x, theory.gaussian_entropy(cov)
    if name == "banana":
        d = get_density("banana")
        return d.sample(n, seed=seed), d.entropy()  # exact (flowlab.densities)
    raise ValueError(f"Unknown lesson data {name!r}; choose one of {', '.join(LINEAR_DATA)}.")


def linear_flow_trainer(x, steps: int = 300, lr: float = presets.LINEAR_LESSON.lr,
                        method: str = presets.LINEAR_LESSON.method, batch: int = presets.LINEAR_LESSON.batch,
                        chunk: int = 25, seed: int = 0) -> Trainer:
    """A one-layer FC flow (= affine flow z = W x + b: the last layer has no activation) on raw (unstandardised)
    data, Adam with cosine decay over ``steps``."""
    return build_trainer(data=x, method=method, batch=batch, chunk=chunk, seed=seed, lr=lr, decay=steps,
                         **LINEAR_SETTINGS)


def linear_flow_summary(trainer: Trainer) -> dict:
    """Training-set NLL of the trained affine flow against Liao & He's bound, the whitening check W Σ Wᵀ ≈ I (and
    its error ‖W Σ Wᵀ − I‖_F, 0 at every optimum) and the expansion/contraction balance E‖z‖² ≈ d."""
    x = np.asarray(trainer.x_train, np.float64)
    W = np.asarray(trainer.params["W"][0], np.float64)
    b = np.asarray(trainer.params["b"][0], np.float64)
    mu, cov = theory.gaussian_mle(x)
    nll = theory.linear_flow_nll(W, b, x)
    bound = theory.optimal_nll(cov)
    whitened = W @ cov @ W.T
    return {"train_nll": nll, "bound": bound, "gap": nll - bound, "W": W, "b": b, "cov": cov, "mu": mu,
            "whitened_cov": whitened, "whitening_error": float(np.linalg.norm(whitened - np.eye(len(W)))),
            "balance": theory.scale_profile(W, b, x, [1.0])["mean_sq_norm"], "dim": x.shape[1]}


class LinearRun(NamedTuple):
    """One training run of the lesson: the training-set NLL after every chunk (step 0: before training), the
    summary at the end, the trainer's held-out NLL per evaluation and one message per divergence."""

    steps: list
    train_nll: list
    summary: dict
    test_steps: list
    test_nll: list
    diverged: list


def train_linear_flow(trainer: Trainer, steps: int, progress: Callable[[int, int], None] | None = None) -> LinearRun:
    """Train for ``steps`` optimiser steps; after each chunk record the training-set NLL (``linear_flow_summary``)
    and call ``progress(step, steps)`` (the page's progress bar)."""
    steps = int(steps)
    curve_steps, curve_nll = [trainer.step], [linear_flow_summary(trainer)["train_nll"]]

    def on_chunk(t: Trainer):
        curve_steps.append(t.step)
        curve_nll.append(linear_flow_summary(t)["train_nll"])
        if progress is not None:
            progress(t.step, steps)

    trainer.train(steps=steps, callback=on_chunk)
    return LinearRun(curve_steps, curve_nll, linear_flow_summary(trainer), list(trainer.evals["step"]),
                     list(trainer.evals["test_nll"]), [d.message for d in trainer.divergences])
