"""flowlab.compare: same-init property, SNF angle ≈ 0 when R = W⁻¹, the high-D mixture density, divergence handling,
settings validation, CSV, query parameters, plot builders and the CLI on tiny sizes."""
import csv
import io
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import compare as C
from flowlab import gradients as G
from flowlab.flow import FlowSpec, init_params
from flowlab.plots.compare import convergence_figure, lambda_figure

TINY = dict(n_inits=3, n_points=40, iterations=4, layers=2)


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
    """One full-batch GD step of the vmapped/scanned group == W - lr * grad for each init separately."""
    s = C.CompareSettings(**{**TINY, "iterations": 1, "lr": 0.05})
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
def test_snf_angle_is_zero_when_R_is_the_inverse(x64):
    spec = FlowSpec(3, 3)
    p = init_params(spec, jax.random.PRNGKey(0), init="identity_noise", noise=0.5, dtype=jnp.float64)
    p["b"] = 0.1 * jax.random.normal(jax.random.PRNGKey(1), p["b"].shape, jnp.float64)
    p["R"] = jnp.linalg.inv(p["W"])
    x = jax.random.normal(jax.random.PRNGKey(2), (64, 3), jnp.float64)
    angle = jax.jit(C.snf_angle, static_argnums=0)  # one compile for every call below
    for lam in (0.0, 1.0, 100.0):
        a = float(angle(spec, p, x, jnp.asarray(lam, jnp.float64)))
        assert a < 1e-5, (lam, a)
    # a perturbed R gives a clearly non-zero angle
    p2 = {**p, "R": p["R"] + 0.05 * jax.random.normal(jax.random.PRNGKey(3), p["R"].shape, jnp.float64)}
    assert float(angle(spec, p2, x, jnp.asarray(1.0, jnp.float64))) > 0.01


def test_snf_angle_matches_arccos_away_from_zero(x64):
    a = jnp.array([1.0, 0.0, 0.0])
    for deg in (0.5, 30.0, 90.0, 170.0):
        r = math.radians(deg)
        c = jnp.array([math.cos(r), math.sin(r), 0.0])
        assert abs(float(C._angle(a, c)) - deg) < 1e-9


def test_run_records_snf_metrics_starting_at_zero():
    run = C.ConvergenceRun(C.CompareSettings(methods=("self_normalizing",), **TINY)).run()
    d = run.curves()["methods"]["self_normalizing"]
    assert d["angle"].shape == d["inv_err"].shape == d["recon"].shape == (5, 3)
    assert np.all(d["angle"][0] < 0.05) and np.all(d["inv_err"][0] < 1e-5)  # R = W⁻¹ at the start
    assert np.all(np.isfinite(d["angle"]))


# ---- the high-dimensional density -------------------------------------------------------------------------------------
def test_mixture_nd_log_prob_is_normalised_and_matches_one_component():
    d = C.mixture_nd(3, seed=1)
    # Monte Carlo: E_p[1] via importance sampling from a wide Gaussian
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200_000, 3)) * 4.0
    logq = -0.5 * np.sum((z / 4.0) ** 2, 1) - 3 * math.log(4.0) - 1.5 * math.log(2 * math.pi)
    mass = np.mean(np.exp(d.log_prob(z) - logq))
    assert abs(mass - 1.0) < 0.03
    one = C.MixtureND(d.means[:1], d.rots[:1], d.scales[:1])
    x = one.sample(5, seed=0)
    cov = d.rots[0] @ np.diag(d.scales[0] ** 2) @ d.rots[0].T
    diff = x - d.means[0]
    want = (-0.5 * np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff) - 0.5 * np.linalg.slogdet(cov)[1]
            - 1.5 * math.log(2 * math.pi))
    np.testing.assert_allclose(one.log_prob(x), want, rtol=1e-10)


def test_high_dimensional_run_is_finite_and_timed():
    s = C.CompareSettings(density=C.DENSITY_ND, dim=12, n_inits=2, n_points=60, iterations=3, layers=2,
                          optimizer="adam", lr=1e-3, methods=("relative",))
    c = C.ConvergenceRun(s).run().curves()
    for d in c["methods"].values():
        assert np.all(np.isfinite(d["loss"])) and d["time"][-1] > 0 and np.all(np.diff(d["time"]) >= 0)
    assert np.isfinite(c["true_nll"]) and 0 < c["true_nll"] < 200


# ---- divergence, progress, cancel -------------------------------------------------------------------------------------
def test_divergence_is_detected_and_frozen_not_raised():
    run = C.ConvergenceRun(C.CompareSettings(lr=8.0, methods=("relative",), n_inits=3, n_points=40,
                                             iterations=30)).run()
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


def test_advance_in_pieces_progress_and_cancel():
    run = C.ConvergenceRun(C.CompareSettings(methods=("relative",), n_inits=3, n_points=40, iterations=10))
    assert run.progress == 0 and run.status == "Iteration 0 of 10."
    run.advance(max_pieces=3)
    assert run.iteration == 3 and run.progress == pytest.approx(0.3)
    run.cancel()
    run.advance()
    assert run.iteration == 3 and run.finished and not run.done
    assert run.status == "Stopped at iteration 3 of 10."


def test_eval_every_groups_steps():
    s = C.CompareSettings(methods=("relative",), n_inits=3, n_points=40, iterations=10, eval_every=4, lr=0.05)
    run = C.ConvergenceRun(s).run()
    c = run.curves()["methods"]["relative"]
    assert list(c["iteration"]) == [0, 4, 8, 10]  # the last piece is 2 steps, not 4
    one = C.ConvergenceRun(C.CompareSettings(**{**s.as_dict(), "eval_every": 1})).run()
    np.testing.assert_allclose(np.asarray(run.groups["relative"].params["W"]),
                               np.asarray(one.groups["relative"].params["W"]), rtol=1e-4, atol=1e-5)
    assert C.CompareSettings(density=C.DENSITY_ND, dim=64, iterations=500).every == 5
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


@pytest.mark.parametrize("lams, match", [((), "at least one"), ((-1.0,), "between 0"), ((float("nan"),), "between")])
def test_lambda_sweep_rejects_bad_lambdas(lams, match):
    with pytest.raises(ValueError, match=match):
        C.LambdaSweep(C.CompareSettings(**TINY), lams=lams)


# ---- settings validation ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    (dict(density="unicorn"), "Unknown density"),
    (dict(dim=3), "is 2-D"),
    (dict(density=C.DENSITY_ND, dim=10_000), "between 2 and 512"),
    (dict(layers=0), "number of layers"),
    (dict(layers=2.5), "whole number"),
    (dict(lr=-1.0), "learning rate"),
    (dict(lr=float("nan")), "learning rate"),
    (dict(optimizer="sgd"), "Unknown optimiser"),
    (dict(n_inits=0), "initialisations"),
    (dict(iterations=0), "iterations"),
    (dict(n_points=5), "data points"),
    (dict(methods=()), "at least one"),
    (dict(methods=("relative", "magic")), "Unknown gradient method"),
    (dict(methods=("relative", "relative")), "only once"),
    (dict(lam=-1.0), "λ"),
    (dict(seed=-1), "seed"),
    (dict(iterations=5, eval_every=10), "cannot exceed"),
    (dict(init="zeros"), "initialisation"),
])
def test_bad_settings_raise_one_sentence(kw, match):
    with pytest.raises(ValueError, match=match) as e:
        C.CompareSettings(**kw)
    msg = str(e.value)
    assert msg.endswith(".") and "\n" not in msg


def test_methods_are_normalised_to_a_fixed_order():
    assert C.CompareSettings(methods=["self_normalizing", "inverse"]).methods == ("inverse", "self_normalizing")
    assert C.CompareSettings(methods="relative").methods == ("relative",)


def test_query_round_trip_and_bad_values():
    s = C.CompareSettings(density=C.DENSITY_ND, dim=64, optimizer="adam", lr=0.003, n_inits=4, iterations=200)
    got, notes = C.settings_from_query(C.settings_to_query(s))
    assert notes == [] and C.CompareSettings(**got) == s
    got, notes = C.settings_from_query({"layers": "x", "inits": "0", "opt": "rmsprop", "dim": "64"})
    assert got["layers"] == 2 and got["n_inits"] == 10 and got["optimizer"] == "gd" and got["dim"] == 2
    assert len(notes) == 4 and "'x'" in notes[0]


# ---- CSV, summaries ---------------------------------------------------------------------------------------------------
def test_csv_long_format():
    run = C.ConvergenceRun(C.CompareSettings(**TINY)).run()
    text = run.to_csv()
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    assert tuple(rows[0]) == C.CSV_COLUMNS
    assert len(rows) == 3 * 3 * 5  # methods × inits × evaluations
    snf = [r for r in rows if r["method"] == "self_normalizing"]
    assert snf[0]["angle_deg"] != "" and float(snf[0]["lambda"]) == 1.0
    assert all(r["angle_deg"] == "" for r in rows if r["method"] == "relative")
    assert float(rows[0]["loss_nats"]) > 0


def test_iterations_to_reach():
    it = np.array([0, 1, 2, 3])
    loss = np.array([[5.0, 5.0], [4.0, 4.9], [3.0, 4.8], [2.0, 4.7]])
    np.testing.assert_array_equal(C.iterations_to_reach(it, loss, np.array([3.5, 1.0])), [2.0, np.nan])


# ---- CLI ----------------------------------------------------------------------------------------------------------------
def test_cli_convergence_tiny(tmp_path, capsys):
    out = os.path.join(tmp_path, "fig")
    rc = C.cli_main(["convergence", "--inits", "3", "--points", "40", "--iters", "3", "--out", out, "--quiet"])
    assert rc == 0
    assert os.path.getsize(out + ".html") > 1000
    with open(out + ".csv") as f:
        assert f.readline().startswith("# FlowLab convergence")
    printed = capsys.readouterr().out
    assert '"method": "relative"' in printed and "wrote" in printed


def test_cli_lambda_and_bad_input(tmp_path, capsys):
    out = os.path.join(tmp_path, "lam")
    assert C.cli_main(["lambda", "--lams", "0,1,10", "--inits", "3", "--points", "40", "--iters", "2", "--out", out,
                       "--quiet"]) == 0
    assert os.path.exists(out + ".csv")
    assert C.cli_main(["convergence", "--dim", "7", "--out", out]) == 2
    assert "is 2-D" in capsys.readouterr().err
    assert C.cli_main(["lambda", "--lams", "1,x", "--out", out]) == 2


def test_python_m_flowlab_figure_dispatches(tmp_path):
    from flowlab.__main__ import main

    out = os.path.join(tmp_path, "m")
    assert main(["figure", "convergence", "--methods", "ordinary,snf", "--inits", "3", "--points", "40", "--iters",
                 "2", "--out", out, "--quiet"]) == 0
    assert os.path.exists(out + ".html")

