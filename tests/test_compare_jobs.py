"""flowlab.compare.jobs: the same start for every method and every rate, a step equals plain gradient descent, the
recorded angle is Keller Fig. 3's (``gradients.snf_angle``), divergence frozen and marked (never raised), progress and
cancel in pieces, the λ sweep.  Most tests train at one rate (``rates`` = the shared ``lr``): the sweep itself is
tests/test_compare_rates.py."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import compare as C
from flowlab import gradients as G
from flowlab import metrics
from flowlab.flow import FlowSpec, init_params
from flowlab.plots.compare import convergence_figure, lambda_figure
from flowlab.custom_densities import text_density
from flowlab.settings import COMPARE_ND, COMPARE_TEXT

TINY = dict(inits=3, points=40, iters=4, layers=2, rates=(0.02,))  # one rate: the grid is {0.02} = {lr}


# ---- same start -------------------------------------------------------------------------------------------------------
def test_every_method_starts_from_identical_parameters():
    run = C.ConvergenceRun(C.CompareSettings(**TINY))
    assert not run.started
    run.start()
    p = {m: run.initial_params(m) for m in run.settings.methods}
    assert set(p) == {"inverse", "relative", "self_normalizing"}
    for m in ("relative", "self_normalizing"):
        for k in ("W", "b"):
            np.testing.assert_array_equal(p[m][k], p["inverse"][k])
    # the inits differ from each other, and the SNF starts with R = Wᵀ = W⁻¹ (orthogonal init)
    W = p["inverse"]["W"]
    assert W.shape == (3, 2, 2, 2) and not np.allclose(W[0], W[1])
    np.testing.assert_array_equal(p["self_normalizing"]["R"], np.swapaxes(W, -1, -2))
    np.testing.assert_allclose(np.einsum("nlij,nljk->nlik", p["self_normalizing"]["R"], W),
                               np.broadcast_to(np.eye(2), W.shape), atol=1e-5)
    # the live groups really hold those parameters before the first step, and the first loss is the same
    for m, g in run.groups.items():
        np.testing.assert_array_equal(np.asarray(g.params["W"]), W)
    # with a sweep of rates every rate starts from the same inits too (member i·inits + j is init j at rate i)
    swept = C.ConvergenceRun(C.CompareSettings(**{**TINY, "rates": (0.01, 0.04)}))
    for g in swept.groups.values():
        np.testing.assert_array_equal(np.asarray(g.params["W"]), np.concatenate([W, W, W]))
        np.testing.assert_allclose(np.asarray(g.lr), np.repeat([0.01, 0.02, 0.04], 3), rtol=1e-6)
    losses = [g.hist["loss"][0] for g in run.groups.values()]
    for v in losses[1:]:
        np.testing.assert_allclose(v, losses[0], rtol=1e-6)


def test_same_seed_same_inits_other_seed_other_inits():
    a = C.initial_params(C.CompareSettings(seed=3, **TINY))
    b = C.initial_params(C.CompareSettings(seed=3, **TINY))
    c = C.initial_params(C.CompareSettings(seed=4, **TINY))
    np.testing.assert_array_equal(np.asarray(a["W"]), np.asarray(b["W"]))
    assert not np.allclose(np.asarray(a["W"]), np.asarray(c["W"]))


def test_first_step_of_gd_matches_plain_gradient_descent_per_init():
    """One full-batch SGD step of the vmapped/scanned group == W - lr * grad for each init separately."""
    s = C.CompareSettings(**{**TINY, "iters": 1, "lr": 0.05, "rates": (0.05,)})
    assert s.optimizer == "sgd"
    run = C.ConvergenceRun(s)
    run.advance()
    for m in ("inverse", "relative"):
        fn = jax.jit(G.make_grad_fn(m, s.spec))
        for j in range(3):
            p0 = {k: jnp.asarray(v[j]) for k, v in run.initial_params(m).items()}
            g, _ = fn(p0, run.data, {})
            want = np.asarray(p0["W"] - 0.05 * g["W"])
            np.testing.assert_allclose(np.asarray(run.groups[m].params["W"][j]), want, rtol=1e-5, atol=1e-6)


# ---- SNF angle --------------------------------------------------------------------------------------------------------
def test_the_recorded_angle_is_kellers_fig3_angle_of_each_member():
    """Compare records the one angle definition (``gradients.snf_angle``: the likelihood gradient of W, λ left out),
    so it does not change with λ; at the start R = Wᵀ = W⁻¹ (orthogonal init), so it is ≈ 0 there."""
    s = C.CompareSettings(methods=("self_normalizing",), **{**TINY, "iters": 2, "lr": 0.05, "rates": (0.05,)})
    runs = {lam: C.ConvergenceRun(C.CompareSettings(**{**s.as_dict(), "lam": lam})).run() for lam in (0.0, 5.0)}
    angle = jax.jit(G.snf_angle, static_argnums=0)
    for lam, run in runs.items():
        g = run.groups["self_normalizing"]
        d = run.curves()["methods"]["self_normalizing"]
        for j in range(3):
            want = float(angle(s.spec, {k: v[j] for k, v in g.params.items()}, run.data))
            assert d["angle"][-1, j] == pytest.approx(want, rel=1e-4, abs=1e-4)
        assert np.all(d["angle"][0] < 0.05)
    # λ moves the weights (the recorded angles differ) but never enters the definition: the same weights, one angle
    assert not np.allclose(runs[0.0].curves()["methods"]["self_normalizing"]["angle"][-1],
                           runs[5.0].curves()["methods"]["self_normalizing"]["angle"][-1])


def test_angle_degrees_matches_arccos_away_from_zero(x64):
    """The angle snf_angle uses (metrics.angle_degrees, the 2·atan2 form) equals arccos where arccos is accurate."""
    a = jnp.array([1.0, 0.0, 0.0])
    for deg in (0.5, 30.0, 90.0, 170.0):
        r = math.radians(deg)
        c = jnp.array([math.cos(r), math.sin(r), 0.0])
        assert abs(float(metrics.angle_degrees(a, c)) - deg) < 1e-9


def test_run_records_snf_metrics_starting_at_zero():
    run = C.ConvergenceRun(C.CompareSettings(methods=("self_normalizing",), **TINY)).run()
    d = run.curves()["methods"]["self_normalizing"]
    assert d["angle"].shape == d["inv_err"].shape == d["recon"].shape == (5, 3)
    assert np.all(d["angle"][0] < 0.05) and np.all(d["inv_err"][0] < 1e-5)  # R = W⁻¹ at the start
    assert np.all(np.isfinite(d["angle"]))


def test_high_dimensional_run_is_finite_and_timed():
    s = C.CompareSettings(density=COMPARE_ND, dim=12, inits=2, points=60, iters=3, layers=2, optimizer="adam",
                          lr=1e-3, rates=(1e-3, 4e-3), methods=("relative",))
    c = C.ConvergenceRun(s).run().curves()
    for d in c["methods"].values():
        assert np.all(np.isfinite(d["loss"])) and d["time"][-1] > 0 and np.all(np.diff(d["time"]) >= 0)
    assert np.isfinite(c["true_nll"]) and 0 < c["true_nll"] < 200


def test_a_run_on_typed_text_has_the_texts_exact_nll():
    """Issue 18: the density of a typed text like any toy; its true NLL is −mean log p of the very points trained on,
    and it is finite (no point sits on an empty pixel)."""
    s = C.CompareSettings(density=COMPARE_TEXT, text="Hi", **TINY)
    run = C.ConvergenceRun(s).run()
    lp = np.asarray(text_density("Hi").log_prob(run.x.astype(np.float32)), np.float64)
    assert run.x.shape == (40, 2) and np.all(np.isfinite(lp))
    np.testing.assert_allclose(run.true_nll, -np.mean(lp), rtol=1e-12)
    c = run.curves()
    assert c["settings"]["text"] == "Hi" and np.isfinite(c["true_nll"])
    for d in c["methods"].values():
        assert d["loss"].shape == (5, 3) and np.all(np.isfinite(d["loss"]))
    x2, nll2 = C.make_data(s)  # the same settings give the same points
    np.testing.assert_array_equal(x2, run.x)
    assert nll2 == run.true_nll and C.make_data(C.CompareSettings(density=COMPARE_TEXT, text="Ho", **TINY))[1] != nll2


# ---- divergence, progress, cancel -------------------------------------------------------------------------------------
def test_divergence_is_detected_and_frozen_not_raised():
    run = C.ConvergenceRun(C.CompareSettings(lr=8.0, rates=(8.0,), methods=("relative",), inits=3, points=40,
                                             iters=30)).run()
    d = run.curves()["methods"]["relative"]
    div = d["diverged_at"]
    assert np.all(div >= 0), div
    for j, it in enumerate(div):
        e = list(d["iteration"]).index(it)
        assert np.all(np.isnan(d["loss"][e:, j])) and np.all(np.isfinite(d["loss"][:e, j]))
    # frozen at finite weights
    assert np.all(np.isfinite(np.asarray(run.groups["relative"].params["W"])))
    rows = C.summary_rows(run.curves())
    assert rows[0]["diverged"] == 3 and math.isnan(rows[0]["final_loss_mean"])
    fig = convergence_figure(run.curves())  # draws without error
    assert "3/3 diverged" in fig.data[1].name
    notes = C.divergence_notes(run.curves(), run.explode)
    assert len(notes) == 1 and "3 of 3 inits diverged" in notes[0] and "1,200 nats" in notes[0]
    assert notes[0].startswith("**relative** at lr 8: ")


def test_advance_in_pieces_progress_and_cancel():
    run = C.ConvergenceRun(C.CompareSettings(methods=("relative",), inits=3, points=40, iters=10, rates=(0.02,)))
    assert run.progress == 0 and run.status == "Iteration 0 of 10."
    run.advance(max_pieces=3)
    assert run.iteration == 3 and run.progress == pytest.approx(0.3)
    run.cancel()
    run.advance()
    assert run.iteration == 3 and run.finished and not run.done
    assert run.status == "Stopped at iteration 3 of 10."


def test_eval_every_groups_steps():
    s = C.CompareSettings(methods=("relative",), inits=3, points=40, iters=10, eval_every=4, lr=0.05, rates=(0.05,))
    run = C.ConvergenceRun(s).run()
    c = run.curves()["methods"]["relative"]
    assert list(c["iteration"]) == [0, 4, 8, 10]  # the last piece is 2 steps, not 4
    one = C.ConvergenceRun(C.CompareSettings(**{**s.as_dict(), "eval_every": 1})).run()
    np.testing.assert_allclose(np.asarray(run.groups["relative"].params["W"]),
                               np.asarray(one.groups["relative"].params["W"]), rtol=1e-4, atol=1e-5)
    assert C.CompareSettings(density=COMPARE_ND, dim=64, iters=500).every == 5
    assert C.CompareSettings().every == 1


# ---- λ sweep ----------------------------------------------------------------------------------------------------------
def test_lambda_sweep_shapes_and_shared_inits():
    sw = C.LambdaSweep(C.CompareSettings(**TINY), lams=(10.0, 0.0, 1.0))
    assert sw.lams == (0.0, 1.0, 10.0)
    W = np.asarray(sw.groups["self_normalizing"].params["W"])
    np.testing.assert_array_equal(W[:3], W[3:6])  # every λ starts from the same inits
    sw.run()
    c = sw.curves()
    assert set(c["per_lambda"]) == {0.0, 1.0, 10.0}
    for d in c["per_lambda"].values():
        assert d["loss"].shape == (5, 3)
    rows = sw.summary()
    assert [r["lambda"] for r in rows] == [0.0, 1.0, 10.0] and all(r["n"] == 3 for r in rows)
    assert lambda_figure(c).data
    text = sw.to_csv()
    assert "lambda_sweep" in text.splitlines()[0]


@pytest.mark.parametrize("lams, match", [((), "at least one"), ((-1.0,), "between 0"), ((float("nan"),), "between"),
                                         (tuple(range(9)), "at most 8")])
def test_lambda_sweep_rejects_bad_lambdas(lams, match):
    with pytest.raises(ValueError, match=match):
        C.LambdaSweep(C.CompareSettings(**TINY), lams=lams)


# ---- budget, failures, compiled cache (issue 16) ----------------------------------------------------------------------
from flowlab import budget as Bu  # noqa: E402
from flowlab.compare import jobs as J  # noqa: E402

SERVER = Bu.session_budget({}, available=64 * Bu.GiB, platform="cpu")
OOM = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 20615843020 bytes."


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_a_refused_job_makes_nothing(monkeypatch, kind):
    monkeypatch.setattr(J, "make_data", lambda *a: pytest.fail("must not make data"))
    monkeypatch.setattr(J, "initial_params", lambda *a: pytest.fail("must not make weights"))
    s = C.CompareSettings(density=COMPARE_ND, dim=128, layers=20, inits=20, points=20000)
    with pytest.raises(ValueError, match=r"^This run needs about \d+ GiB .*512 MB per session"):
        C.ConvergenceRun(s, budget=SERVER) if kind == "run" else C.LambdaSweep(s, (0.1, 1.0), budget=SERVER)


def test_a_job_that_fits_runs_with_a_budget():
    run = C.ConvergenceRun(C.CompareSettings(**TINY), budget=SERVER).run()
    assert run.done and run.error is None and run.status == "Finished 4 iterations."


def test_an_allocation_failure_ends_the_job_with_one_sentence(monkeypatch):
    run = C.ConvergenceRun(C.CompareSettings(methods=("relative",), **TINY), budget=SERVER)
    run.advance(max_pieces=1)
    calls = []

    def oom(self, lr, steps):
        calls.append(steps)
        raise RuntimeError(OOM)

    monkeypatch.setattr(J._Group, "step", oom)
    run.advance()
    assert run.finished and not run.done and len(calls) == 1
    assert run.error == run.status == ("Stopped at iteration 1 of 4: this machine could not allocate 19 GiB; use "
                                       "fewer points, inits or layers.")
    run.advance()
    run.run()
    assert len(calls) == 1  # never retried
    assert run.curves()["methods"]["relative"]["loss"].shape == (2, 3)  # what ran is kept


def test_other_errors_are_not_swallowed(monkeypatch):
    run = C.ConvergenceRun(C.CompareSettings(methods=("relative",), **TINY))
    monkeypatch.setattr(J._Group, "step", lambda *a: (_ for _ in ()).throw(KeyError("bug")))
    with pytest.raises(KeyError):
        run.advance()
    assert run.error is None


def test_the_compiled_plan_refines_the_check(monkeypatch):
    """The estimate passes (its check is switched off here), but XLA's plan of the first compiled piece is over what
    the budget leaves: the job ends with one sentence before that piece runs."""
    monkeypatch.setattr(J, "check", lambda *a: None)
    tight = Bu.Budget(2_000, None, ("this test allows", "2 KB"))
    run = C.ConvergenceRun(C.CompareSettings(methods=("relative",), **TINY), budget=tight)
    run.advance()
    assert run.finished and run.iteration == 0 and not run.groups["relative"].elapsed  # no step ran
    assert run.error.startswith("XLA plans about") and "of the relative gradient" in run.error
    assert run.error.endswith("use fewer points, inits or layers.") and run.error.count(". ") == 0


def test_compiled_cache_is_bounded_and_thread_safe():
    import threading

    cache = C.CompiledCache(size=3)
    fn = jax.jit(lambda x: x * 2.0)
    shapes = [(k,) for k in range(1, 9)]
    errors = []

    def work(shape):
        try:
            for _ in range(3):
                out = cache.get(fn, "double", jnp.ones(shape))(jnp.ones(shape))
                assert out.shape == shape and float(out[0]) == 2.0
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in shapes for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(cache) <= 3
    first = cache.get(fn, "double", jnp.ones((2,)))
    assert cache.get(fn, "double", jnp.ones((2,))) is first  # a hit returns the same executable
    assert len(C.COMPILED) <= J.COMPILED_CACHE
