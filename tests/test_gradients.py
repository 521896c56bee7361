import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowlab import gradients as G
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec, forward, init_params, log_prob

ACTS = ["smooth_leaky_relu", "tanh_linear"]
LEARNED = ["learned_leaky_relu", "learned_steps"]


def _setup(act, D=3, L=4, B=11, snf=False):
    spec = FlowSpec(D, L, make_activation(act))
    p = init_params(spec, jax.random.PRNGKey(0), dtype=jnp.float64, with_R=snf)
    p["W"] = p["W"] + 0.3 * jax.random.normal(jax.random.PRNGKey(1), p["W"].shape, jnp.float64)
    p["b"] = 0.5 * jax.random.normal(jax.random.PRNGKey(2), p["b"].shape, jnp.float64)
    if "A" in p:  # learned activation: parameters away from their (shared) start, different per unit
        p["A"] = p["A"] + 0.5 * jax.random.normal(jax.random.PRNGKey(4), p["A"].shape, jnp.float64)
    if snf:
        p["R"] = jnp.linalg.inv(p["W"])
    x = 1.5 * jax.random.normal(jax.random.PRNGKey(3), (B, D), jnp.float64)
    return spec, p, x


def _maxdiff(a, b, keys=("W", "b")):
    return max(float(jnp.max(jnp.abs(a[k] - b[k]))) for k in keys)


@pytest.mark.parametrize("act", ACTS)
def test_exact_matches_finite_differences(act, x64):
    spec, p, x = _setup(act, D=2, L=3)
    g = G.make_grad_fn("exact", spec)(p, x, {})[0]
    eps = 1e-6
    for key, idx in [("W", (1, 0, 1)), ("W", (2, 1, 1)), ("b", (0, 1))]:
        up = {k: v.at[idx].add(eps) if k == key else v for k, v in p.items()}
        dn = {k: v.at[idx].add(-eps) if k == key else v for k, v in p.items()}
        fd = (G.exact_nll(spec, up, x) - G.exact_nll(spec, dn, x)) / (2 * eps)
        assert abs(float(fd) - float(g[key][idx])) < 1e-7


@pytest.mark.parametrize("act", ACTS + LEARNED)
def test_hand_written_deltas_equal_the_accumulator_trick(act, x64):
    """δ_k from the reverse scan equals autodiff of the data NLL w.r.t. a zero accumulator on y_k (App. D)."""
    spec, params, batch = _setup(act)
    loss, delta = G._deltas(spec, params, batch)
    acc0 = jnp.zeros((spec.layers,) + batch.shape, batch.dtype)
    (loss_ad, _), delta_ad = jax.value_and_grad(lambda a: G.data_nll(spec, params, batch, a), has_aux=True)(acc0)
    assert abs(float(loss - loss_ad)) < 1e-12
    np.testing.assert_allclose(np.asarray(delta), np.asarray(delta_ad), rtol=1e-10, atol=1e-12)
    # the relative gradient's variant stops the scan at layer 2 and takes δ_1 from the carry
    _, _, delta_short, dx, g_act = G._backward(spec, params, batch, input_errors=False)
    assert dx is None
    np.testing.assert_allclose(np.asarray(delta_short), np.asarray(delta_ad), rtol=1e-10, atol=1e-12)
    if "A" in params:  # the learned activation's gradient is the data NLL's autodiff gradient w.r.t. A
        g_ad = jax.grad(lambda a: G.data_nll(spec, {**params, "A": a}, batch)[0])(params["A"])
        np.testing.assert_allclose(np.asarray(g_act), np.asarray(g_ad), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(G._backward(spec, params, batch)[4]), np.asarray(g_ad), atol=1e-12)
    else:
        assert g_act is None


@pytest.mark.parametrize("layers", [1, 2])
def test_relative_shallow_flows_match_exact_times_WtW(layers, x64):
    """L = 1 (a lone affine layer: the reverse scan runs over no layer) and L = 2 take the same path as deeper flows."""
    spec, p, x = _setup("smooth_leaky_relu", L=layers)
    rel = G.make_grad_fn("relative", spec)(p, x, {})[0]
    ex = G.exact_grads(spec, p, x)
    want_W = jnp.einsum("lij,lkj,lkm->lim", ex["W"], p["W"], p["W"]) + jnp.einsum(
        "li,lj,ljk->lik", ex["b"], p["b"], p["W"])
    np.testing.assert_allclose(rel["W"], want_W, atol=1e-9)


@pytest.mark.parametrize("act", ACTS)
def test_inverse_equals_exact(act, x64):
    spec, p, x = _setup(act)
    assert _maxdiff(G.make_grad_fn("inverse", spec)(p, x, {})[0], G.exact_grads(spec, p, x)) < 1e-10


@pytest.mark.parametrize("act", ACTS)
def test_relative_is_exact_times_augmented_WtW(act, x64):
    """App. F eqs. 30-33: [G g_b] W̄ᵀW̄ with W̄ = [[W, b], [0, 1]], top D rows, per layer."""
    spec, p, x = _setup(act)
    rel = G.make_grad_fn("relative", spec)(p, x, {})[0]
    ex = G.exact_grads(spec, p, x)
    D = spec.dim
    for k in range(spec.layers):
        Wb = jnp.zeros((D + 1, D + 1)).at[:D, :D].set(p["W"][k]).at[:D, D].set(p["b"][k]).at[D, D].set(1.0)
        want = jnp.concatenate([ex["W"][k], ex["b"][k][:, None]], axis=1) @ Wb.T @ Wb
        np.testing.assert_allclose(rel["W"][k], want[:, :D], atol=1e-8, rtol=0)
        np.testing.assert_allclose(rel["b"][k], want[:, D], atol=1e-8, rtol=0)


def test_relative_without_bias_is_eq_20(x64):
    """With b = 0 the update is G W^T W - W (eq. 20 for the log-det part)."""
    spec, p, x = _setup("smooth_leaky_relu")
    p["b"] = jnp.zeros_like(p["b"])
    rel = G.make_grad_fn("relative", spec)(p, x, {})[0]
    ex = G.exact_grads(spec, p, x)
    want = jnp.einsum("lij,lkj,lkm->lim", ex["W"], p["W"], p["W"])
    np.testing.assert_allclose(rel["W"], want, atol=1e-9)


def _dot_shapes(hlo):
    """Operand shapes of every stablehlo.dot_general in a lowered module."""
    out = []
    for line in hlo.splitlines():
        if "stablehlo.dot_general" in line:
            sig = line.rsplit(":", 1)[1]
            shapes = re.findall(r"tensor<([0-9x]+)x[a-z0-9]+>", sig)
            out.append([tuple(int(v) for v in s_.split("x")) for s_ in shapes[:2]])
    return out


QUADRATIC = [m for m in G.METHODS if G.REGISTRY[m].order == 2]


@pytest.mark.parametrize("act", ["smooth_leaky_relu", "learned_steps"])
@pytest.mark.parametrize("method", QUADRATIC)
def test_quadratic_methods_have_no_cubic_operation(method, act):
    """Shape/flop check for every method the registry files under O(B·D²), with a fixed and a learned activation: no
    dot_general multiplies two D x D matrices, there is no LU, inverse or solve (CPU LAPACK custom calls), and the
    compiled flop count grows x4 (not x8) when D doubles."""
    D, B, L = 64, 8, 2
    spec = FlowSpec(D, L, make_activation(act))
    p = init_params(spec, jax.random.PRNGKey(0), with_R=G.REGISTRY[method].learned_inverse)
    x = jnp.ones((B, D))
    hyper = {"lam": jnp.float32(1.0)}
    hlo = jax.jit(G.make_grad_fn(method, spec)).lower(p, x, hyper).as_text()
    dots = _dot_shapes(hlo)
    assert len(dots) >= 4
    for lhs, rhs in dots:
        assert not (lhs[-2:] == (D, D) and rhs[-2:] == (D, D)), (lhs, rhs)
    assert "custom_call" not in hlo and "triangular_solve" not in hlo
    # the exact method does contain them: the check can fail
    hlo_exact = jax.jit(G.make_grad_fn("exact", spec)).lower(p, x, {}).as_text()
    assert "custom_call" in hlo_exact or "triangular_solve" in hlo_exact

    def flops(spec_, p_, x_):
        c = jax.jit(G.make_grad_fn(method, spec_)).lower(p_, x_, hyper).compile().cost_analysis()
        return (c[0] if isinstance(c, list) else c)["flops"]

    f1 = flops(spec, p, x)
    spec2 = FlowSpec(2 * D, L, make_activation(act))
    p2 = init_params(spec2, jax.random.PRNGKey(0), with_R=G.REGISTRY[method].learned_inverse)
    f2 = flops(spec2, p2, jnp.ones((B, 2 * D)))
    assert f1 < 40 * L * B * D * D, f1  # O(L B D^2) with a small constant
    assert f2 / f1 < 4.6, f2 / f1  # x4 for D^2; a D^3 term would push it towards x8


@pytest.mark.parametrize("method", G.METHODS)
def test_registry_contract(method, x64):
    """Every method: a descent direction for the NLL; the exact gradient where the registry says so (methods with
    learned inverses: exactly at R = W⁻¹); one label, short label and colour of its own."""
    m = G.REGISTRY[method]
    spec, p, x = _setup("tanh_linear", D=3, L=3, B=7, snf=m.learned_inverse)
    g, _ = G.make_grad_fn(method, spec)(p, x, {"lam": 1.0})
    ex = G.exact_grads(spec, p, x)
    flat = lambda t: jnp.concatenate([t["W"].ravel(), t["b"].ravel()])  # noqa: E731
    assert float(jnp.dot(flat(g), flat(ex))) > 0  # -g lowers the NLL to first order
    eps = 1e-4
    stepped = {**p, "W": p["W"] - eps * g["W"], "b": p["b"] - eps * g["b"]}
    assert float(G.exact_nll(spec, stepped, x)) < float(G.exact_nll(spec, p, x))
    if m.exact or m.learned_inverse:
        assert _maxdiff(g, ex) < 1e-9
    else:
        assert _maxdiff(g, ex) > 1e-3  # a different direction (the relative gradient rescales by W̄ᵀW̄)
    assert m.order in (2, 3) and m.cost.startswith("O(") and m.color.startswith("#")
    assert m.playground <= m.trainable
    others = [o for o in G.REGISTRY.values() if o.name != method]
    assert all(o.color != m.color and o.label != m.label and o.short != m.short for o in others)
    assert G.check_method(method) == method and all(G.check_method(a) == method for a in m.aliases)


def test_cost_order_sorts_the_cheap_methods_first():
    assert G.by_cost(["exact", "relative", "autodiff_jacobian", "self_normalizing"]) == (
        "relative", "self_normalizing", "exact", "autodiff_jacobian")


@pytest.mark.parametrize("act", ACTS)
def test_self_normalizing_equals_exact_at_exact_inverse(act, x64):
    spec, p, x = _setup(act, snf=True)
    g, m = G.make_grad_fn("self_normalizing", spec)(p, x, {"lam": 3.0})
    assert float(m["recon"]) < 1e-20
    assert _maxdiff(g, G.exact_grads(spec, p, x)) < 1e-10
    # R's update is the exact gradient of the inverse-parameterised model (Keller eq. 9 with δ^g = δ^f)
    gR = jax.grad(lambda R: G.exact_nll(spec, {"W": jnp.linalg.inv(R), "b": p["b"]}, x))(p["R"])
    np.testing.assert_allclose(g["R"], gR, atol=1e-10)
    assert float(G.angle_degrees(g, G.exact_grads(spec, p, x))) < 1e-4


def test_self_normalizing_reconstruction_gradient(x64):
    """Away from R = W^-1 the reconstruction term's part of the direction is 2 λ × autodiff of
    E = sum_k mean ||R W h - h||^2 (2 × the gradient of Keller's -(−λE))."""
    spec, p, x = _setup("smooth_leaky_relu", snf=True)
    p["R"] = p["R"] + 0.05 * jax.random.normal(jax.random.PRNGKey(8), p["R"].shape, jnp.float64)
    g0, _ = G.make_grad_fn("self_normalizing", spec)(p, x, {"lam": 0.0})
    g1, m = G.make_grad_fn("self_normalizing", spec)(p, x, {"lam": 2.0})
    from flowlab.flow import forward

    f = forward(spec, p, x)
    hs_in = jnp.concatenate([f.h0[None], f.hs[:-1]])
    rg = jax.grad(lambda wr: jnp.sum(G.reconstruction({"W": wr[0], "R": wr[1]}, hs_in)))((p["W"], p["R"]))
    np.testing.assert_allclose(g1["W"] - g0["W"], 2 * 2.0 * rg[0], atol=1e-10)
    np.testing.assert_allclose(g1["R"] - g0["R"], 2 * 2.0 * rg[1], atol=1e-10)
    assert float(m["recon"]) > 0
    ang = float(G.angle_degrees(g0, G.exact_grads(spec, p, x)))
    assert 0.0 < ang < 90.0


def test_autodiff_jacobian_equals_exact(x64):
    spec, p, x = _setup("tanh_linear", D=3, L=3, B=5)
    g = G.make_grad_fn("autodiff_jacobian", spec)(p, x, {})[0]
    assert _maxdiff(g, G.exact_grads(spec, p, x)) < 1e-10


def test_all_methods_share_the_interface():
    for act, keys in (("smooth_leaky_relu", {"W", "b", "R"}), ("learned_steps", {"W", "b", "R", "A"})):
        spec = FlowSpec(2, 3, make_activation(act))
        p = init_params(spec, jax.random.PRNGKey(0), with_R=True)
        x = jnp.ones((4, 2))
        for m in G.METHODS:
            grads, metrics = G.jitted_grad_fn(m, spec)(p, x, {"lam": 1.0})
            assert set(grads) == keys and "data_loss" in metrics
            assert all(grads[k].shape == p[k].shape for k in p)


def test_unknown_method():
    with pytest.raises(ValueError, match="Unknown gradient method 'natural'"):
        G.make_grad_fn("natural", FlowSpec(2, 2))
    with pytest.raises(ValueError, match="learned inverses"):
        G.make_grad_fn("self_normalizing", FlowSpec(2, 2))(init_params(FlowSpec(2, 2), jax.random.PRNGKey(0)),
                                                            jnp.ones((3, 2)), {})


# ---- learned activations: every method -----------------------------------------------------------------------------
def _recon_grads(spec, p, x):
    """Autodiff of E = Σ_k mean_b ‖R_k W_k h − h‖² w.r.t. (W, R) on stop-gradient layer inputs h of the flow f."""
    f = forward(spec, p, x)
    hs_in = jax.lax.stop_gradient(jnp.concatenate([f.h0[None], f.hs[:-1]]))
    return jax.grad(lambda wr: jnp.sum(G.reconstruction({"W": wr[0], "R": wr[1]}, hs_in)))((p["W"], p["R"]))


@pytest.mark.parametrize("act", LEARNED)
@pytest.mark.parametrize("method", G.METHODS)
def test_every_method_gives_activation_parameters_their_ordinary_gradient(method, act, x64):
    """With a learned activation, every method's A-direction is autodiff of the NLL, and its W- and b-directions are
    still its own formula: exact / ordinary / full Jacobian = the exact gradient; relative = [G g_b] W̄ᵀW̄ (App. F);
    self-normalizing (R ≠ W⁻¹ here) = the exact gradient with Rᵀ for W⁻ᵀ (eq. 10) plus 2λ ∂E/∂W."""
    m = G.REGISTRY[method]
    spec, p, x = _setup(act, D=3, L=3, B=9, snf=m.learned_inverse)
    if m.learned_inverse:
        p["R"] = p["R"] + 0.05 * jax.random.normal(jax.random.PRNGKey(8), p["R"].shape, jnp.float64)
    lam = 0.7
    g, _ = G.make_grad_fn(method, spec)(p, x, {"lam": lam})
    ex = G.exact_grads(spec, p, x)
    assert set(ex) == {"W", "b", "A"}
    np.testing.assert_allclose(g["A"], ex["A"], rtol=1e-10, atol=1e-12)
    assert float(jnp.max(jnp.abs(ex["A"]))) > 1e-3  # a real gradient, not zeros on both sides
    if method == "relative":
        D = spec.dim
        for k in range(spec.layers):
            Wb = jnp.zeros((D + 1, D + 1)).at[:D, :D].set(p["W"][k]).at[:D, D].set(p["b"][k]).at[D, D].set(1.0)
            want = jnp.concatenate([ex["W"][k], ex["b"][k][:, None]], axis=1) @ Wb.T @ Wb
            np.testing.assert_allclose(g["W"][k], want[:, :D], atol=1e-9)
            np.testing.assert_allclose(g["b"][k], want[:, D], atol=1e-9)
    elif method == "self_normalizing":
        rW, _ = _recon_grads(spec, p, x)
        subst = jnp.swapaxes(jnp.linalg.inv(p["W"]) - p["R"], -1, -2)  # W⁻ᵀ − Rᵀ
        np.testing.assert_allclose(g["W"], ex["W"] + subst + 2 * lam * rW, atol=1e-9)
        np.testing.assert_allclose(g["b"], ex["b"], atol=1e-10)
    else:
        assert _maxdiff(g, ex) < 1e-9


# ---- Keller's λ (eq. 3) ------------------------------------------------------------------------------------------------
def _keller_objective(spec, p, x, lam):
    """Keller et al. eq. 3 literally, batch-averaged: ½ log p_f + ½ log p_g − λ E.  p_f: the flow with weights W;
    p_g: the flow g⁻¹ whose linear maps are R_k⁻¹, g_k(z) = R_k (s⁻¹(z) − b_k): g's parameters are R alone (as in
    Keller's FC layer, γ = R); its bias and activation are f's, undone exactly, so they take no gradient through p_g;
    E = Σ_k mean_b ‖g_k(f_k(h)) − h‖² = Σ_k mean_b ‖R_k W_k h − h‖² on stop-gradient inputs h of f."""
    f_params = {k: v for k, v in p.items() if k != "R"}
    lp_f = jnp.mean(log_prob(spec, f_params, x))
    g_params = {**jax.lax.stop_gradient(f_params), "W": jnp.linalg.inv(p["R"])}
    lp_g = jnp.mean(log_prob(spec, g_params, x))
    f = forward(spec, f_params, x)
    hs_in = jax.lax.stop_gradient(jnp.concatenate([f.h0[None], f.hs[:-1]]))
    E = jnp.sum(G.reconstruction(p, hs_in))
    return 0.5 * lp_f + 0.5 * lp_g - lam * E


@pytest.mark.parametrize("act", ["smooth_leaky_relu", "learned_steps"])
def test_self_normalizing_is_twice_the_gradient_of_kellers_objective(act, x64):
    """FlowLab's λ is Keller's: the self-normalizing direction is 2 × ∇(−L) of eq. 3 built by autodiff.
    * R = W⁻¹: the whole direction (W, b, R and A) equals 2 × ∇(−L) (p_f = p_g; eqs. 10, 11 are exact there).
    * R ≠ W⁻¹: W's direction equals 2 × ∂(−L)/∂W once eq. 10's substitution Rᵀ for W⁻ᵀ is undone (this pins the λ
      term against the likelihood's scale), and R's λ term equals that of 2 × ∂(−L)/∂R (eqs. 17, 20)."""
    spec, p, x = _setup(act, D=3, L=3, B=13, snf=True)
    fn = G.make_grad_fn("self_normalizing", spec)
    lam = 1.7
    g, _ = fn(p, x, {"lam": lam})
    want = jax.grad(lambda q: -2.0 * _keller_objective(spec, q, x, lam))(p)
    for k in p:
        np.testing.assert_allclose(g[k], want[k], atol=1e-9, err_msg=k)
    p["R"] = p["R"] + 0.1 * jax.random.normal(jax.random.PRNGKey(11), p["R"].shape, jnp.float64)
    g, m = fn(p, x, {"lam": lam})
    assert float(m["recon"]) > 1e-3
    want = jax.grad(lambda q: -2.0 * _keller_objective(spec, q, x, lam))(p)
    subst = jnp.swapaxes(jnp.linalg.inv(p["W"]) - p["R"], -1, -2)
    np.testing.assert_allclose(g["W"] - subst, want["W"], atol=1e-9)
    g0, _ = fn(p, x, {"lam": 0.0})
    want0 = jax.grad(lambda q: -2.0 * _keller_objective(spec, q, x, 0.0))(p)
    np.testing.assert_allclose(g["R"] - g0["R"], want["R"] - want0["R"], atol=1e-9)
    assert float(jnp.max(jnp.abs(g["R"] - g0["R"]))) > 1e-2  # the λ term is not negligible here


# ---- one SNF angle (Keller Fig. 3) -----------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["tanh_linear", "learned_leaky_relu"])
def test_snf_angle_is_zero_only_at_the_exact_inverse(act, x64):
    spec, p, x = _setup(act, snf=True)
    assert float(G.snf_angle(spec, p, x)) < 1e-6
    p["R"] = p["R"] + 0.05 * jax.random.normal(jax.random.PRNGKey(9), p["R"].shape, jnp.float64)
    ang = float(G.snf_angle(spec, p, x))
    g_snf = G.make_grad_fn("self_normalizing", spec)(p, x, {"lam": 0.0})[0]
    assert 0.0 < ang < 90.0
    assert ang == pytest.approx(float(G.angle_degrees(g_snf, G.exact_grads(spec, p, x), keys=("W",))), rel=1e-12)
    assert float(G.snf_angle(spec, p, x)) == ang  # λ does not enter: there is no λ argument to pass


def test_snf_angle_grows_towards_the_optimum_for_a_fixed_inverse_error(x64):
    """A single linear layer z = W x + b on Gaussian data has the optimum Wᵀ W = Σ̂⁻¹, b = −W μ̂, where the exact
    W-gradient W Σ̂ − W⁻ᵀ vanishes; the SNF one is W Σ̂ − Rᵀ.  With R = W⁻¹ + 0.1 E for a fixed E, the error term
    −0.1 Eᵀ stays while the exact gradient shrinks, so the angle between them grows as W approaches the optimum."""
    D, B = 3, 400
    rng = np.random.default_rng(0)
    A = rng.normal(size=(D, D)) + 2 * np.eye(D)
    x = jnp.asarray(rng.normal(size=(B, D)) @ A.T + np.array([1.0, -2.0, 0.5]))
    mu, cov = np.asarray(x).mean(0), np.cov(np.asarray(x).T, bias=True)
    evals, evecs = np.linalg.eigh(cov)
    W_opt = evecs @ np.diag(evals ** -0.5) @ evecs.T
    W0 = np.eye(D) + 0.3 * rng.normal(size=(D, D))
    E = rng.normal(size=(D, D))
    spec = FlowSpec(D, 1)

    def at(t):
        W = (1 - t) * W0 + t * W_opt
        return {"W": jnp.asarray(W)[None], "b": jnp.asarray(-W @ mu)[None],
                "R": jnp.asarray(np.linalg.inv(W) + 0.1 * E)[None]}

    assert float(jnp.max(jnp.abs(G.exact_grads(spec, at(1.0), x)["W"]))) < 1e-10  # the optimum really is one
    angles = [float(G.snf_angle(spec, at(t), x)) for t in (0.0, 0.5, 0.9)]
    assert 0.0 < angles[0] < angles[1] < angles[2] < 90.0, angles
