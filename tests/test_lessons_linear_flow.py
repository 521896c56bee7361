"""Lesson 6 (flowlab.lessons.linear_flow): a one-layer flow trained live reaches Liao & He's bound, whitens the data
and balances expansion against contraction; the training loop records the page's curves."""
import numpy as np
import pytest

from flowlab import lessons as L
from flowlab import theory as T


def test_training_a_linear_flow_reaches_the_bound():
    """A one-layer FC flow (affine) trained by relative-gradient Adam, 300 steps with cosine decay, ends within
    0.005 nats of Liao & He's bound on its training set.  Why 0.005: the excess NLL is quadratic in the parameter
    error; minibatch noise at the final (decayed) learning rate leaves errors ~1e-2, i.e. excess ~1e-4..1e-3 nats;
    the starting gap is > 0.1 nats, so a trainer that does not learn fails.  Below the bound is impossible, up to
    float32 rounding of the parameters (1e-4)."""
    x, _ = L.linear_lesson_data("correlated_gaussian", n=4000, seed=0)
    tr = L.linear_flow_trainer(x, steps=300, lr=0.05, seed=0)
    start = L.linear_flow_summary(tr)
    assert start["gap"] > 0.1
    seen = []
    run = L.train_linear_flow(tr, 300, progress=lambda step, total: seen.append((step, total)))
    s = L.linear_flow_summary(tr)
    assert -1e-4 < s["gap"] < 5e-3, s["gap"]
    assert np.allclose(s["whitened_cov"], np.eye(2), atol=0.05)
    assert abs(s["balance"] - 2.0) < 0.05  # expansion/contraction balance E‖z‖² = d
    # the engine's own float32 likelihood agrees with the closed-form evaluation of the same W, b
    assert np.isclose(-np.mean(np.asarray(tr.log_prob(tr.x_train), np.float64)), s["train_nll"], atol=1e-3)
    # the run's record: one training NLL per chunk (25 steps) after the starting one, the trainer's held-out curve
    assert run.steps == list(range(0, 301, 25)) and len(run.train_nll) == len(run.steps)
    assert run.train_nll[0] == pytest.approx(start["train_nll"]) and run.train_nll[-1] == pytest.approx(s["train_nll"])
    assert seen == [(k, 300) for k in range(25, 301, 25)]
    assert run.summary["gap"] == pytest.approx(s["gap"]) and run.diverged == []
    assert run.test_steps == list(tr.evals["step"]) and len(run.test_nll) == len(run.test_steps) > 0


def test_summary_whitening_error():
    """‖W Σ Wᵀ − I‖_F: 0 at the closed-form optimum, large for a W that does not whiten."""
    x, _ = L.linear_lesson_data("correlated_gaussian", n=2000, seed=1)
    tr = L.linear_flow_trainer(x, steps=10, seed=0)
    s = L.linear_flow_summary(tr)
    wc = s["whitened_cov"]
    assert s["whitening_error"] == pytest.approx(float(np.linalg.norm(wc - np.eye(2))), rel=1e-12)
    W, _ = T.optimal_linear_flow(tr.x_train)
    mu, cov = T.gaussian_mle(tr.x_train)
    assert np.linalg.norm(W @ cov @ W.T - np.eye(2)) < 1e-10
    assert s["whitening_error"] > 0.1 and s["dim"] == 2


def test_the_lessons_trainer_settings():
    """One affine layer on raw data, no warm-up, decay over the run, the lesson's batch and chunk."""
    x, _ = L.linear_lesson_data("correlated_gaussian", n=1000, seed=0)
    tr = L.linear_flow_trainer(x, steps=200, lr=0.02, batch=128, chunk=20)
    assert tr.spec.layers == 1 and not tr.standardize and tr.cfg.batch == 128 and tr.cfg.chunk == 20
    assert float(tr.hyper["warmup"]) == 0 and float(tr.hyper["decay"]) == 200
    assert float(tr.hyper["lr"]) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="Unknown lesson data"):
        L.linear_lesson_data("spiral")
