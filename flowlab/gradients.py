"""Five ways to get the gradient of the negative log-likelihood of the FC flow — one interface.

Every method is built by ``make_grad_fn(method, spec)`` and returns ``fn(params, batch, hyper) -> (grads, metrics)``:
``batch`` holds standardised inputs h_0 (B, D), ``grads`` has the structure of ``params`` and is a descent direction
for the loss  NLL = -mean_b [log N(z) + sum_{k<L} sum_i log s'(y_k,i)] - sum_k log|det W_k|,  fed to the same optax
optimiser for every method.  ``hyper`` is a dict of array hyper-parameters (``lam`` for self-normalizing flows).
A learned activation's parameters A get their ordinary gradient from every method (autodiff of the elementwise part,
O(B·D·n) per layer); W keeps its method's direction.

* ``exact``              autodiff through ``slogdet``                                          O(L D^3 + L B D^2)
* ``inverse``            backprop for the data terms, plus the explicit -W_k^{-T} (Gresele §3, eq. 10)  O(L D^3)
* ``relative``           (grad) · W̄ᵀW̄ per layer on the augmented matrix (eqs. 13–15, App. A.1 eq. 21,
                         App. F eqs. 32–33); the log-det term contributes -W_k itself.  O(L B D^2): only
                         (B,D)x(D,D) and outer-product contractions, no inverse, no (D,D)x(D,D) product.
* ``self_normalizing``   Keller et al. eqs. 3, 10–11 / 17, 20: W gets -R^T in place of -W^{-T}; R gets
                         -(δ W)ᵀ Z + Wᵀ; plus 2λ × the gradient of the reconstruction loss Σ_k mean ||R W h - h||² on
                         stop-gradient layer inputs, λ on Keller's scale (2 × the gradient of -eq. 3).  Needs
                         ``params['R']``.  O(L B D^2).
* ``autodiff_jacobian``  full per-sample Jacobian by forward-mode autodiff + slogdet.  O(B L D^3); for timing and
                         verification only.

The data-term backprop gives the errors δ_k = dNLL/dy_k (B, D) at every pre-activation (what App. D's accumulator
trick extracts from autodiff) by a hand-written reverse scan, checked against that trick in the tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import jax
import jax.numpy as jnp

from . import metrics
from .flow import FlowSpec, activation_params, forward, logdet_weights
from .metrics import log_normal
from .plots import style


def data_nll(spec: FlowSpec, params: dict, h0, acc=None):
    """NLL without the sum_k log|det W_k| term, and the forward pass (for its intermediates)."""
    f = forward(spec, params, h0, None, acc)
    return -jnp.mean(log_normal(f.z) + jnp.sum(f.logdet_act, axis=0)), f


def exact_nll(spec: FlowSpec, params: dict, h0):
    """Full NLL of standardised inputs (slogdet for the weight terms)."""
    loss, _ = data_nll(spec, params, h0)
    return loss - jnp.sum(logdet_weights(params))


def _backward(spec, params, h0, input_errors=True):
    """Forward pass, then a hand-written reverse scan over the layers for the backpropagated errors

        δ_L = z / B,    δ_k = (δ_{k+1} W_{k+1}) ⊙ s'(y_k) - (1/B) (s''/s')(y_k)    (k < L)

    (δ_k = d data-NLL / d y_k, what App. D's accumulator trick extracts from autodiff; checked in the tests), one
    (B,D)x(D,D) product per layer.  Returns (data NLL, forward, δ (L,B,D), δ_k W_k (L,B,D): the error at each
    layer's input, or None without ``input_errors``: then the scan stops at layer 2 and δ_1 comes from its carry,
    saving the product δ_1 W_1 that only the self-normalizing R-gradient uses, gA: the gradient of the learned
    activation parameters (L-1, D, n) or None).  Faster than differentiating through the forward scan at large D;
    the per-layer gradient products are then done batched over layers outside the scan (on CPU each scanned (D,D)
    slice and output costs a copy).

    A learned activation's layer is differentiated by autodiff of its elementwise part alone: the VJP of
    (y, θ) ↦ (s(y; θ), log s'(y; θ)) with cotangents (dh, -1/B) gives δ_k and dNLL/dθ_k together, O(B·D·n)."""
    act = spec.activation
    f = forward(spec, params, h0)
    loss = -jnp.mean(log_normal(f.z) + jnp.sum(f.logdet_act, axis=0))
    L, B = params["W"].shape[0], h0.shape[0]
    last = jnp.arange(L) == L - 1
    thetas = activation_params(spec, params)

    def error(dh, y, theta, is_last):  # (δ_k, dNLL/dθ_k) from dh = d loss / d h_k
        if not act.learnable:
            return jnp.where(is_last, dh, dh * act.deriv(y) - act.deriv2(y) / (act.deriv(y) * B)), theta
        _, vjp = jax.vjp(lambda y_, t_: (act(y_, t_), act.log_deriv(y_, t_)), y, theta)
        delta, g_theta = vjp((dh, jnp.full_like(y, -1.0 / B)))
        return jnp.where(is_last, dh, delta), jnp.where(is_last, 0.0, g_theta)

    def back(dh, inp):
        W, y, theta, is_last = inp
        delta, g_theta = error(dh, y, theta, is_last)
        dx = delta @ W
        return dx, (delta, dx, g_theta)

    g_act = None
    if input_errors:
        _, (delta, dx, g_th) = jax.lax.scan(back, f.z / B, (params["W"], f.ys, thetas, last), reverse=True)
    else:
        dh1, (delta, _, g_th) = jax.lax.scan(back, f.z / B, (params["W"][1:], f.ys[1:], thetas[1:], last[1:]),
                                             reverse=True)
        d1, g1 = error(dh1, f.ys[0], thetas[0], last[0])
        delta = jnp.concatenate([d1[None], delta], axis=0)
        g_th = jnp.concatenate([g1[None], g_th], axis=0)
        dx = None
    if act.learnable:
        g_act = g_th[:-1]
    return loss, f, delta, dx, g_act


def _deltas(spec, params, h0):
    """(data NLL, δ (L, B, D)) with δ_k = d data-NLL / d y_k (see ``_backward``)."""
    loss, _, delta, _, _ = _backward(spec, params, h0)
    return loss, delta


def _exact(spec):
    def fn(params, batch, hyper):
        loss, grads = jax.value_and_grad(lambda p: exact_nll(spec, p, batch))(params)
        if "R" in params:
            grads["R"] = jnp.zeros_like(params["R"])
        return grads, {"data_loss": loss + jnp.sum(logdet_weights(params))}

    return fn


def _inverse(spec):
    def fn(params, batch, hyper):
        (loss, _), g = jax.value_and_grad(lambda p: data_nll(spec, p, batch), has_aux=True)(params)
        g = dict(g)
        g["W"] = g["W"] - jnp.swapaxes(jnp.linalg.inv(params["W"]), -1, -2)  # d(-log|det W|)/dW = -W^{-T}, eq. 10
        if "R" in params:
            g["R"] = jnp.zeros_like(params["R"])
        return g, {"data_loss": loss}

    return fn


def _relative(spec):
    def fn(params, batch, hyper):
        W, b = params["W"], params["b"]
        loss, f, delta, _, g_act = _backward(spec, params, batch, input_errors=False)
        g_b = jnp.sum(delta, axis=1)  # (L, D)
        # Augmented rows (App. F): A = [h W^T; b] (B+1, D) and E = [δ; g_b]; h W^T = y - b is already computed.
        # eq. 32: G W^T W + g_b (b^T W), with G = δ^T h - W^{-T}    =>  E^T (A W) - W
        # eq. 33: G (W^T b) + g_b (1 + b^T b)                      =>  E^T (A b) + g_b - b
        # One (B+1,D)x(D,D) product and one (D,B+1)x(B+1,D) product per layer, no separate rank-1 pass over D x D.
        A = jnp.concatenate([f.ys - b[:, None, :], b[:, None, :]], axis=1)  # (L, B+1, D)
        E = jnp.concatenate([delta, g_b[:, None, :]], axis=1)  # (L, B+1, D)
        gW = jnp.einsum("lbi,lbj->lij", E, jnp.einsum("lbi,lij->lbj", A, W)) - W
        gb = jnp.einsum("lbi,lb->li", E, jnp.einsum("lbi,li->lb", A, b)) + g_b - b
        grads = {"W": gW, "b": gb}
        if g_act is not None:
            grads["A"] = g_act  # ordinary gradient (autodiff of the elementwise part, O(B·D·n) per layer)
        if "R" in params:
            grads["R"] = jnp.zeros_like(params["R"])
        return grads, {"data_loss": loss}

    return fn


def reconstruction(params: dict, hs_in):
    """Per-layer mean_b ||R_k W_k h - h||^2 on the given layer inputs hs_in (L, B, D)."""
    rec = jnp.einsum("lbi,lji,lkj->lbk", hs_in, params["W"], params["R"]) - hs_in
    return jnp.mean(jnp.sum(rec * rec, axis=-1), axis=-1)


def _self_normalizing(spec):
    """Keller et al.'s objective (eq. 3), averaged over the batch, with E = Σ_k mean_b ‖R_k W_k h - h‖² on
    stop-gradient layer inputs h = h_{k-1}:

        L = ½ (log p_f + log p_g) - λ E,

    FlowLab's λ (``hyper["lam"]``) is Keller's λ.  The direction returned is 2 × the gradient of -L, with eq. 10/17's
    Rᵀ in place of W⁻ᵀ and eq. 11/20's δ^g ≈ δ^f:

        W: δᵀh - Rᵀ + 2λ ∂E/∂W         (eqs. 10, 17)     R: -(δW)ᵀ Z + Wᵀ + 2λ ∂E/∂R      (eqs. 11, 20)

    (δ = dNLL/dy, Z = h Wᵀ).  The factor 2 keeps the likelihood part on the scale of the NLL, as for every other
    method: at R = W⁻¹ the W-, b- and A-directions are the exact NLL gradient, so learning rates carry over."""

    def fn(params, batch, hyper):
        if "R" not in params:
            raise ValueError("self_normalizing needs learned inverses: initialise the flow with with_R=True.")
        W, b, R = params["W"], params["b"], params["R"]
        loss, f, delta, dx, g_act = _backward(spec, params, batch)  # dx = δ W, the error at each layer's input
        hs_in = jnp.concatenate([f.h0[None], f.hs[:-1]], axis=0)  # layer inputs h_{k-1} (L, B, D)
        Z = f.ys - b[:, None, :]  # h W^T
        B = batch.shape[0]
        # eq. 10 / 17: δ^T h - R^T  (R^T stands in for W^{-T});  eq. 11 / 20: -(δ W)^T Z + W^T
        gW = jnp.einsum("lbi,lbj->lij", delta, hs_in) - jnp.swapaxes(R, -1, -2)
        gR = -jnp.einsum("lbi,lbj->lij", dx, Z) + jnp.swapaxes(W, -1, -2)
        # 2λ ∂E/∂·, E = Σ_k mean_b ||R W h - h||²:  with e = Z R^T - h,  ∂E/∂R = (2/B) eᵀ Z,  ∂E/∂W = (2/B) (e R)ᵀ h
        # -- (B,D)x(D,D) products only
        E = jnp.einsum("lbj,lkj->lbk", Z, R) - hs_in
        rec = jnp.sum(E * E) / B
        lam = hyper["lam"]
        ER = jnp.einsum("lbk,lkj->lbj", E, R)
        gW = gW + (4.0 * lam / B) * jnp.einsum("lbj,lbi->lji", ER, hs_in)
        gR = gR + (4.0 * lam / B) * jnp.einsum("lbk,lbj->lkj", E, Z)
        grads = {"W": gW, "b": jnp.sum(delta, axis=1), "R": gR}
        if g_act is not None:
            grads["A"] = g_act
        return grads, {"data_loss": loss, "recon": rec}

    return fn


def jacobian_logdet(spec: FlowSpec, params: dict, h0):
    """log|det dz/dh_0| per sample from the full (B, D, D) Jacobian (forward-mode autodiff) — O(B L D^3)."""

    def single(x):
        return forward(spec, params, x[None])[4][0]

    J = jax.vmap(jax.jacfwd(single))(h0)
    return jnp.linalg.slogdet(J)[1]


def _autodiff_jacobian(spec):
    def fn(params, batch, hyper):
        def loss_fn(p):
            z = forward(spec, p, batch).z
            return -jnp.mean(log_normal(z) + jacobian_logdet(spec, p, batch))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        if "R" in params:
            grads["R"] = jnp.zeros_like(params["R"])
        return grads, {"data_loss": loss + jnp.sum(logdet_weights(params))}

    return fn


@dataclass(frozen=True)
class Method:
    """One gradient method: everything any page, plot, CLI or file needs to know about it.

    ``order``: exponent of D in the cost of one gradient (3: a factorisation or inverse per layer, 2: only
    (B,D)x(D,D) products); ``exact``: the direction equals the exact gradient of the NLL (up to rounding);
    ``learned_inverse``: the parameters carry R_k ≈ W_k⁻¹; ``trainable``: offered for training (the full-Jacobian
    method is for timing and verification only); ``playground``: offered on the Playground, where D = 2 and the
    explicit-inverse gradient would only repeat the exact one."""

    name: str
    label: str
    short: str
    color: str
    order: int
    cost: str
    exact: bool
    learned_inverse: bool
    trainable: bool
    playground: bool
    builder: Callable = None
    aliases: tuple = ()


REGISTRY: dict[str, Method] = {m.name: m for m in (
    Method("exact", "exact (autodiff through slogdet)", "exact", style.RED, 3, "O(L·D³ + L·B·D²)", exact=True,
           learned_inverse=False, trainable=True, playground=True, builder=_exact, aliases=("autodiff",)),
    Method("inverse", "ordinary, explicit W⁻ᵀ", "ordinary (W⁻ᵀ)", style.PURPLE, 3, "O(L·D³ + L·B·D²)", exact=True,
           learned_inverse=False, trainable=True, playground=False, builder=_inverse, aliases=("ordinary",)),
    Method("relative", "relative gradient", "relative", style.BLUE, 2, "O(L·B·D²)", exact=False,
           learned_inverse=False, trainable=True, playground=True, builder=_relative),
    Method("self_normalizing", "self-normalizing (learned R ≈ W⁻¹)", "self-normalizing", style.GREEN, 2,
           "O(L·B·D²)", exact=False, learned_inverse=True, trainable=True, playground=True,
           builder=_self_normalizing, aliases=("snf", "self-normalizing", "selfnormalizing")),
    Method("autodiff_jacobian", "autodiff of the full Jacobian", "full Jacobian", style.AMBER, 3, "O(B·L·D³)",
           exact=True, learned_inverse=False, trainable=False, playground=False, builder=_autodiff_jacobian,
           aliases=("jacobian",)),
)}
METHODS = tuple(REGISTRY)
TRAIN_METHODS = tuple(n for n, m in REGISTRY.items() if m.trainable)
PLAYGROUND_METHODS = tuple(n for n, m in REGISTRY.items() if m.playground)
_ALIASES = {a: m.name for m in REGISTRY.values() for a in m.aliases}


def method_name(name: str) -> str:
    """The registry name for a name or alias (``snf`` -> ``self_normalizing``); the input unchanged if unknown."""
    key = str(name).strip().lower()
    return key if key in REGISTRY else _ALIASES.get(key, str(name))


def check_method(method: str, allowed=METHODS) -> str:
    """``method`` (or its alias) as a registry name; ValueError naming the choices if it is not one of ``allowed``."""
    m = method_name(method)
    if m not in allowed:
        raise ValueError(f"Unknown gradient method {method!r}; choose one of: {', '.join(allowed)}.")
    return m


def by_cost(methods) -> tuple:
    """``methods`` cheapest first (registry order within a cost order): the run order of timing grids, so a
    cancelled run still holds the interesting comparison."""
    return tuple(sorted((check_method(m) for m in methods), key=lambda m: (REGISTRY[m].order, METHODS.index(m))))


@lru_cache(maxsize=64)  # keyed by FlowSpec, which links and files vary: bounded
def make_grad_fn(method: str, spec: FlowSpec):
    """Un-jitted gradient function ``(params, batch, hyper) -> (grads, metrics)`` for ``method``."""
    return REGISTRY[check_method(method)].builder(spec)


@lru_cache(maxsize=64)
def jitted_grad_fn(method: str, spec: FlowSpec):
    return jax.jit(make_grad_fn(method, spec))


def exact_grads(spec: FlowSpec, params: dict, batch):
    """Reference gradient of the exact NLL w.r.t. W, b and (learned activation) A."""
    return jax.grad(lambda p: exact_nll(spec, p, batch))({k: params[k] for k in ("W", "b", "A") if k in params})


def angle_degrees(g1: dict, g2: dict, keys=("W", "b")):
    """Angle in degrees between two gradients (flattened over ``keys``)."""
    return metrics.angle_degrees(metrics.flat(g1, keys), metrics.flat(g2, keys))


def snf_angle(spec: FlowSpec, params: dict, batch):
    """Keller et al. Fig. 3's angle (degrees) between the self-normalizing likelihood gradient of the weights and the
    exact one: G_snf = δᵀh - Rᵀ (eq. 10, λ = 0: the reconstruction term excluded) against G = δᵀh - W⁻ᵀ, over all
    layers' W concatenated (biases and activation parameters excluded: their gradients are the same in both).  0
    exactly when every R_k = W_k⁻¹.  Needs ``params['R']``; costs one SNF and one exact gradient."""
    g_snf, _ = REGISTRY["self_normalizing"].builder(spec)(params, batch, {"lam": 0.0})
    return angle_degrees(g_snf, exact_grads(spec, params, batch), keys=("W",))
