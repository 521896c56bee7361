"""flowlab.lessons.learned_activation (lesson 7): curves, counts, the float64 θ-gradient check, monotonicity and the
short training run."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import budget, presets
from flowlab import gradients as G
from flowlab import lessons as L
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec, forward, init_params
from flowlab.metrics import log_normal

SHORT = 200  # one chunk: enough for θ to move, short for a unit test


@pytest.fixture(scope="module")
def run():
    return L.learned_activation_lesson("trimodal", steps=SHORT)


def _setup():
    """A 4-layer learned-steps flow with θ away from its start (different per unit) and 64 random inputs."""
    spec = FlowSpec(2, 4, make_activation("learned_steps"))
    p = init_params(spec, jax.random.PRNGKey(0))
    p["b"] = 0.3 * jax.random.normal(jax.random.PRNGKey(1), p["b"].shape)
    p["A"] = p["A"] + 0.4 * jax.random.normal(jax.random.PRNGKey(2), p["A"].shape)
    return spec, p, 1.3 * jax.random.normal(jax.random.PRNGKey(3), (64, 2))


def test_settings_are_the_tuned_preset_with_the_lesson_overrides():
    s = L.lesson_settings("trimodal")
    tuned = presets.tuned("trimodal")
    assert s["activation"] == tuned.activation == L.lesson_activation().name and s["layers"] == tuned.layers
    assert all(s[k] == v for k, v in L.LESSON_OVERRIDES.items()) and s["decay"] == L.LESSON_STEPS
    assert L.lesson_activation().learnable


def test_curves_are_increasing_and_log_deriv_stays_above_rho(run):
    for view in (L.initial_view(), run):
        for part in ("initial", "trained"):
            c = view[part]
            if c is None:
                continue
            assert np.all(np.diff(c["s"], axis=1) > 0)
            assert np.all(c["log_deriv"] >= c["rho"][:, None] - 1e-5)
    assert run["trained"]["s"].shape == (2, len(run["x"]))


def test_trained_theta_moved_and_the_layer_shown_moved_most(run):
    moved = run["movement"]
    assert moved.shape == (presets.tuned("trimodal").layers - 1,) and np.all(moved > 0)
    assert run["layer"] == int(np.argmax(moved)) + 1
    assert np.max(np.abs(run["trained"]["s"] - run["initial"]["s"])) > 1e-2
    assert run["steps"] == SHORT and np.isfinite(run["kl"]) and run["diverged"] == []


def test_parameter_counts_and_step_cost():
    act = L.lesson_activation()
    n = 1 + 3 * L.ACTIVATION_STEPS
    assert act.n_params == n
    rows = L.parameter_counts(act, dims=(2, 8, 64))
    assert [(r["W"], r["b"], r["theta"]) for r in rows] == [(4, 2, 2 * n), (64, 8, 8 * n), (4096, 64, 64 * n)]
    shares = [r["share"] for r in rows]
    assert shares == sorted(shares, reverse=True) and shares[0] == pytest.approx(2 * n / (4 + 2 + 2 * n))
    assert all(r["theta"] == 0 for r in L.parameter_counts(make_activation("smooth_leaky_relu")))
    assert L.step_cost_ratio(act) == act.step_cost / make_activation(presets.DEFAULT.activation).step_cost > 1
    assert L.step_cost_ratio(make_activation("tanh_linear")) == 1


def test_gradient_check_passes_on_the_trained_flow(run):
    check = run["gradient_check"]
    assert set(check) == set(G.PLAYGROUND_METHODS)
    assert max(check.values()) <= L.GRADIENT_TOL
    assert "up to rounding" in L.gradient_summary(check)


def test_gradient_check_catches_a_wrong_gradient():
    """Dropping the Σ log s' term of eq. 9 from θ's gradient (a plausible bug) fails the check; the real methods pass
    on the same flow."""
    spec, p, x = _setup()
    ok = L.theta_gradient_check(spec, p, x)
    assert max(ok.values()) <= L.GRADIENT_TOL

    def without_log_deriv(params, batch, hyper):
        g = jax.grad(lambda a: -jnp.mean(log_normal(forward(spec, {**params, "A": a}, batch).z)))(params["A"])
        return {"A": g}, {}

    bad = L.theta_gradient_check(spec, p, x, methods=("relative",), grad_fn=without_log_deriv)
    assert bad["relative"] > 1e-3
    assert "NOT the same gradient" in L.gradient_summary(bad)
    assert jnp.asarray(1.0).dtype == jnp.float32  # the check's x64 was scoped


def test_monotonicity_bound(run):
    mono = run["monotonicity"]
    assert mono["min_ratio"] >= 1.0 and mono["min_slope"] > 0 and mono["min_deriv"] >= mono["min_slope"]
    act = L.lesson_activation()
    theta = np.asarray(act.init_params(2))[None].copy()
    theta[..., 0] = -6.0  # a tiny linear slope: s' still never falls below e^ρ
    m = L.monotonicity(act, theta, np.linspace(-50, 50, 2001))
    assert m["min_ratio"] >= 1.0 and m["min_slope"] == pytest.approx(np.exp(-6.0), rel=1e-6)


def test_cost_is_checked_and_bad_input_refused():
    roomy = budget.Budget(10**10, None, ("this server allows", "10 GB"))
    assert L.lesson_refusal("moons", roomy) is None
    tiny = budget.Budget(10_000, None, ("this server allows", "10 kB"))
    msg = L.lesson_refusal("moons", tiny)
    assert msg and msg.count(".") >= 1 and "10 kB" in msg
    assert L.lesson_cost("moons").bytes > 10_000
    with pytest.raises(ValueError, match="Unknown density"):
        L.learned_activation_lesson("unicorn")
